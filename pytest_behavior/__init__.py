"""pytest-behavior: behavior regression testing of language models with pytest.

Importing this package is cheap: litellm, diskcache and yaml load on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
