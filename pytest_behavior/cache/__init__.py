"""The response cache: request keys, the diskcache store, its background writer,
reading a cache folder, and the shared Redis store.

``pytest_behavior.cache`` was one module before 0.1.0; its names are still handed out
here for one release, with a DeprecationWarning naming their new module.
"""

from __future__ import annotations

from pytest_behavior._moved import old_attribute


def __getattr__(name: str) -> object:
    return old_attribute(__name__, name)
