"""A real ``redis-server`` on a free loopback port, for the shared-cache tests.

Debian's ``redis-server`` package provides the binary (.ci/setup installs it). Without
it the tests skip with the reason, unless PYTEST_BEHAVIOR_REQUIRE_REDIS=1 (as
.ci/run sets), where a missing server fails them. No persistence (``--save ''``,
``--appendonly no``): a restarted server is empty, as a fresh Redis would be.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REDIS_SERVER = os.environ.get("PYTEST_BEHAVIOR_REDIS_SERVER", "/usr/bin/redis-server")
REQUIRE_REDIS = "PYTEST_BEHAVIOR_REQUIRE_REDIS"
# What redis-server logs once it listens (Redis 5 to 8).
READY_LINE = b"Ready to accept connections"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def redis_missing() -> str | None:
    """Why the tests cannot start a Redis, or None when they can."""
    if shutil.which(REDIS_SERVER) is None:
        return f"no {REDIS_SERVER} (apt-get install redis-server; .ci/setup installs it)"
    try:
        import redis  # noqa: F401
    except ImportError:
        return "the redis client is not installed (pip install 'pytest-behavior[redis]')"
    return None


def wait_for_line(
    process: subprocess.Popen[bytes], log_path: Path, ready: bytes, name: str
) -> None:
    """Copy ``process``'s output to ``log_path`` until a line holds ``ready`` (the event a
    test waits on, never a sleep), then keep copying in the background. Raises
    RuntimeError with the end of the output when the process exits before saying it."""
    assert process.stdout is not None
    output, log = process.stdout, log_path.open("ab")
    seen = b""
    for line in iter(output.readline, b""):
        log.write(line)
        seen = (seen + line)[-3000:]
        if ready in line:
            break
    else:
        log.close()
        process.wait()
        raise RuntimeError(f"{name} exited at start:\n{seen.decode(errors='replace')}")

    def copy_the_rest() -> None:
        with log:
            for rest in iter(output.readline, b""):
                log.write(rest)

    threading.Thread(target=copy_the_rest, daemon=True).start()


class RedisServer:
    """One redis-server process; ``stop`` and ``start`` again keep its port."""

    def __init__(self, directory: Path, *, password: str | None = None) -> None:
        self.directory = directory
        self.password = password
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password is not None else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        command = [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
        ]
        if self.password is not None:
            command += ["--requirepass", self.password]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        """Read the server's log until it says it accepts connections (the event), or
        ends (it exited); then keep copying the log to redis.log."""
        assert self._process is not None
        wait_for_line(self._process, self.directory / "redis.log", READY_LINE, "redis-server")

    def stop(self) -> None:
        """Kill it (as a crash or an outage would) and wait until it is gone."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.url)


@contextlib.contextmanager
def running_redis(directory: Path, *, password: str | None = None) -> Iterator[RedisServer]:
    """A started server in ``directory``, killed after; skips (or, required, fails)
    where redis-server or the client is missing. The test module's fixtures use it."""
    missing = redis_missing()
    if missing is not None:
        if os.environ.get(REQUIRE_REDIS) == "1":
            pytest.fail(f"{REQUIRE_REDIS}=1 but {missing}")
        pytest.skip(missing)
    directory.mkdir(parents=True, exist_ok=True)
    server = RedisServer(directory, password=password).start()
    try:
        yield server
    finally:
        server.stop()
