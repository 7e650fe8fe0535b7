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
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REDIS_SERVER = os.environ.get("PYTEST_BEHAVIOR_REDIS_SERVER", "/usr/bin/redis-server")
REQUIRE_REDIS = "PYTEST_BEHAVIOR_REQUIRE_REDIS"
# PING until it answers: a bounded number of tries, each a connection attempt.
READY_TRIES = 500
READY_INTERVAL = 0.02


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
        log = (self.directory / "redis.log").open("ab")
        self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        import redis

        client = redis.Redis(
            host="127.0.0.1", port=self.port, password=self.password, socket_connect_timeout=1
        )
        try:
            for _ in range(READY_TRIES):
                assert self._process is not None
                if self._process.poll() is not None:
                    log = (self.directory / "redis.log").read_text(errors="replace")
                    raise RuntimeError(f"redis-server exited at start:\n{log[-2000:]}")
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    time.sleep(READY_INTERVAL)
            raise RuntimeError(f"redis-server on port {self.port} never answered PING")
        finally:
            client.close()

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
