"""The test model server: a real HTTP server on loopback speaking OpenAI's protocol."""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from .. import wire
from ..wire import RequestError
from . import anthropic, checkpoints, echo, protocol
from .dialects import Dialect, dialect_named
from .faults import Fault, FaultQueue, RequestMatcher
from .responders import ChatRequest, Reply, Responder, as_reply, deterministic_choice

DEFAULT_MODEL_ID = "pytest-behavior-test-model"
# How often the serving loop looks for a stop request; bounds how long stop() takes.
POLL_INTERVAL = 0.05
# A burst of parallel clients must not overflow the listen backlog (the default of 5
# turns the overflow into one-second SYN retransmissions).
LISTEN_BACKLOG = 128
_CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
_COMPLETION_PATHS = frozenset({"/v1/completions", "/completions"})
_MODELS_PATHS = frozenset({"/v1/models", "/models"})


class ModelServer:
    """A model on 127.0.0.1 with scripted answers and faults, speaking a provider's protocol.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`. Point litellm
    at it with ``model="openai/<any name>"``, ``api_base=server.api_base`` and any
    ``api_key``. ``responder`` and ``latency`` may be changed while it serves.

    ``dialect`` picks the provider it plays (dialects.py): ``"compatible"`` (the
    default: an OpenAI-compatible server that serves everything), ``"openai"``,
    ``"vllm"`` or ``"anthropic"`` (``model="anthropic/<name>"``, ``api_base=server.url``).
    With ``api_key`` set, a request must carry that key where the dialect's clients
    put it (``Authorization: Bearer``, or ``x-api-key``); ``openai`` and ``anthropic``
    refuse a request without a key in any case, with their own 401 bodies.

    ``port=0`` picks a free port; after :meth:`start`, ``port`` is the one bound.

    ``GET /v1/models`` lists, in vLLM's format, ``served_models`` when given, else
    every model name asked for so far (``DEFAULT_MODEL_ID`` before the first
    request). Each entry reports ``model_root`` as its ``root``, the served weights'
    path, when that is not None; set it between runs to "re-deploy" a checkpoint.
    Both may be changed while it serves.

    ``checkpoint`` names the weights behind the served name, which the plugin's
    checkpoint fingerprint probe sees and ``/v1/models`` does not; ``jitter`` moves
    the probe's log-probabilities by up to that many nats per request, as a server
    batching parallel requests does at temperature 0 (testing/checkpoints.py). The
    probes are counted in ``probe_count``, not in ``requests``.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        serve_logprobs: bool = True,
        serve_completions: bool = True,
        model_root: str | None = None,
        served_models: tuple[str, ...] | None = None,
        dialect: str = "compatible",
        api_key: str | None = None,
        checkpoint: str = checkpoints.DEFAULT_CHECKPOINT,
        jitter: float = 0.0,
    ) -> None:
        self.dialect: Dialect = dialect_named(dialect)
        self.api_key = api_key
        self.checkpoint = checkpoint
        self.jitter = jitter
        self._probes = 0
        self._random = random.Random(0)
        self.responder: Responder = responder if responder is not None else deterministic_choice()
        self.latency = latency
        self.serve_logprobs = serve_logprobs
        # False: a chat-only provider, whose legacy completions endpoint answers 404.
        self.serve_completions = serve_completions
        self.model_root = model_root
        self.served_models = served_models
        self.host = host
        self.port = port
        self._faults = FaultQueue()
        self._stats_lock = threading.Lock()
        self._requests: list[ChatRequest] = []
        self._errors: list[BaseException] = []
        self._in_flight = 0
        self._peak_in_flight = 0
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> ModelServer:
        if self._httpd is not None:
            raise RuntimeError("the model server is already running")
        self._stopping.clear()
        httpd = _HTTPServer((self.host, self.port), _Handler, model_server=self)
        self._httpd = httpd
        # Keep the bound port, so a restart serves at the same URL.
        self.port = int(httpd.server_address[1])
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL},
            name=f"pytest-behavior-model-server:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every connection; prompt even while faults hang."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        # Idle keep-alive connections would otherwise go on answering from their
        # handler threads after the server is gone.
        httpd.close_connections()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> ModelServer:
        return self if self._httpd is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        if self._httpd is None:
            raise RuntimeError("the model server is not running; call start() first")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_base(self) -> str:
        """What litellm takes as ``api_base``: the URL with ``/v1``."""
        return self.url + "/v1"

    # -- faults and statistics -------------------------------------------------------

    def inject(self, fault: Fault, times: int = 1, match: RequestMatcher | None = None) -> None:
        """Queue ``fault`` for the next ``times`` requests that ``match`` accepts (None: any)."""
        self._faults.add(fault, times, match)

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def pending_faults(self) -> int:
        """How many injected faults are still waiting for a request."""
        return len(self._faults)

    @property
    def requests(self) -> list[ChatRequest]:
        """Every request received (faulted ones included), in arrival order; a copy."""
        with self._stats_lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._stats_lock:
            return len(self._requests)

    @property
    def probe_count(self) -> int:
        """How many checkpoint fingerprint probes were answered (testing/checkpoints.py)."""
        with self._stats_lock:
            return self._probes

    @property
    def peak_in_flight(self) -> int:
        """The most requests that were being handled at the same time."""
        with self._stats_lock:
            return self._peak_in_flight

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions the responder raised (each was answered with status 500)."""
        with self._stats_lock:
            return list(self._errors)

    def reset_stats(self) -> None:
        with self._stats_lock:
            self._requests.clear()
            self._errors.clear()
            self._probes = 0
            self._peak_in_flight = self._in_flight

    # -- used by the handler threads -------------------------------------------------

    def _record(self, request: ChatRequest) -> None:
        with self._stats_lock:
            self._requests.append(request)

    def _enter_request(self) -> None:
        with self._stats_lock:
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)

    def _leave_request(self) -> None:
        with self._stats_lock:
            self._in_flight -= 1

    def _record_error(self, error: BaseException) -> None:
        with self._stats_lock:
            self._errors.append(error)

    def _model_ids(self) -> list[str]:
        served = self.served_models
        if served is not None:
            return list(served)
        with self._stats_lock:
            seen = dict.fromkeys(request.model for request in self._requests)
        return list(seen) or [DEFAULT_MODEL_ID]

    def _root_for(self, model_ids: list[str]) -> str | None:
        """The ``root`` /v1/models reports: ``model_root``, else (vLLM) the model's own name."""
        if self.model_root is not None or self.dialect.name != "vllm":
            return self.model_root
        return model_ids[0] if len(model_ids) == 1 else None

    def _take_fault(self, request: ChatRequest) -> Fault | None:
        return self._faults.take(request)

    def _pause(self, seconds: float) -> bool:
        """Sleep in the handler thread; False if the server stopped meanwhile."""
        return not self._stopping.wait(seconds) if seconds > 0 else not self._stopping.is_set()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(
        self,
        address: tuple[str, int],
        handler: Callable[..., BaseHTTPRequestHandler],
        *,
        model_server: ModelServer,
    ) -> None:
        self.model_server = model_server
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # the client may have closed it already
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up mid-answer are part of the job; keep stderr quiet.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, or every request pays a new connection
    disable_nagle_algorithm = True  # or each answer waits ~40 ms for a delayed ACK
    server_version = "pytest-behavior-model-server"
    sys_version = ""
    server: _HTTPServer
    _in_flight = False  # a completion request counted in the server's in-flight figure

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests read the server's statistics, not its log

    @property
    def model_server(self) -> ModelServer:
        return self.server.model_server

    def do_GET(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        server = self.model_server
        if path in _MODELS_PATHS or path.startswith(("/v1/models/", "/models/")):
            refused = server.dialect.refuse_key(self._headers(), server.api_key)
            if refused is not None:
                return self._send_json(*refused)
        if path in _MODELS_PATHS and server.dialect.messages:
            self._send_json(200, anthropic.models_body(server._model_ids()))
        elif path in _MODELS_PATHS:
            ids = server._model_ids()
            self._send_json(200, protocol.models_body(ids, root=server._root_for(ids)))
        elif path.startswith(("/v1/models/", "/models/")):
            model_id = path.split("/models/", 1)[1]
            self._send_json(200, protocol.model_object(model_id, root=server._root_for([model_id])))
        elif path == "/version" and server.dialect.name == "vllm":
            self._send_json(200, {"version": protocol.VLLM_VERSION})
        else:
            self._send_not_found(path)
        return None

    def _headers(self) -> dict[str, str]:
        return {name.lower(): value for name, value in self.headers.items()}

    def do_POST(self) -> None:
        body = self._read_body()
        path = urlsplit(self.path).path.rstrip("/")
        dialect = self.model_server.dialect
        if path in _CHAT_PATHS and dialect.chat and dialect.serves_chat(_model_named(body)):
            self._serve_completion(body, route="chat")
        elif path in _CHAT_PATHS and dialect.chat:
            message = (
                "This is not a chat model and thus not supported in the v1/chat/completions "
                "endpoint. Did you mean to use v1/completions?"
            )
            self._send_json(404, dialect.error_body(404, message))
        elif path in anthropic.MESSAGES_PATHS and dialect.messages:
            self._serve_completion(body, route="messages")
        elif (
            path in _COMPLETION_PATHS
            and dialect.serves_completions(_model_named(body))
            and self.model_server.serve_completions
        ):
            self._serve_completion(body, route="completions")
        elif path in _COMPLETION_PATHS and dialect.chat:
            self._refuse_completions(body)
        elif path == "/tokenize" and dialect.name == "vllm":
            try:
                self._send_json(200, protocol.vllm_tokenize(_parse_json(body)))
            except RequestError as error:
                self._send_json(error.status, dialect.error_body(error.status, error.message))
        else:
            self._send_not_found(path)

    def _refuse_completions(self, raw_body: bytes) -> None:
        """A chat-only provider: counted like any request, answered with 404."""
        with contextlib.suppress(RequestError):
            body = _parse_json(raw_body)
            headers = {name.lower(): value for name, value in self.headers.items()}
            prompts = wire.echo_prompts(body)
            if prompts is not None:
                self.model_server._record(protocol.echo_request(body, headers, prompts))
            else:
                self.model_server._record(protocol.completion_request(body, headers))
        message = "This is a chat model and not supported in the v1/completions endpoint."
        self._send_json(404, self.model_server.dialect.error_body(404, message))

    def _method_not_allowed(self) -> None:
        self._read_body()
        message = f"method {self.command} is not allowed"
        self._send_json(405, self.model_server.dialect.error_body(405, message))

    do_PUT = do_PATCH = do_DELETE = _method_not_allowed

    def _serve_completion(self, raw_body: bytes, *, route: str) -> None:
        server = self.model_server
        server._enter_request()
        self._in_flight = True
        try:
            self._answer(server, raw_body, route=route)
        except RequestError as error:
            body = server.dialect.error_body(error.status, error.message, param=error.param)
            self._send_json(error.status, body)
        except Exception as error:
            # A reply the server cannot render (say, choices that are not numbers):
            # tell the client and keep it for the test to inspect.
            server._record_error(error)
            message = f"the test model server failed: {type(error).__name__}: {error}"
            self._send_json(500, server.dialect.error_body(500, message))
        finally:
            self._leave_flight()

    def _leave_flight(self) -> None:
        """Out of flight once answered, before the answer is written: a client that sends
        its next request on reading this answer must not find this one still counted."""
        if self._in_flight:
            self._in_flight = False
            self.model_server._leave_request()

    def _answer(self, server: ModelServer, raw_body: bytes, *, route: str) -> None:
        body = _parse_json(raw_body)
        headers = self._headers()
        legacy = route == "completions"
        if not legacy and checkpoints.is_probe(headers):
            return self._answer_probe(server, body)
        prompts = wire.echo_prompts(body) if legacy else None
        resolved: list[tuple[str, Reply]] | Exception = []
        if prompts is not None:
            request = protocol.echo_request(body, headers, prompts)
            try:
                resolved = echo.resolve_cases(server.responder, request, prompts)
            except Exception as error:  # answered with a 500 once the request is counted
                resolved = error
            else:  # a list of several cases (a client batching them): every case's context
                request = protocol.with_contexts(request, resolved)
        elif legacy:
            request = protocol.completion_request(body, headers)
        elif route == "messages":
            request = anthropic.messages_request(body, headers)
        else:
            request = protocol.chat_request(body, headers)
        # Counted before the key is checked: a refused request was still sent.
        server._record(request)
        refused = server.dialect.refuse_key(headers, server.api_key)
        if refused is not None:
            return self._send_json(*refused)
        if not server._pause(server.latency):
            return self._drop()
        fault = server._take_fault(request)
        if fault is not None and self._suffer(fault):
            return None
        if route == "messages":
            return self._answer_message(server, request, body)
        unknown = sorted(server.dialect.unrecognized_chat_arguments.intersection(body))
        if unknown and not legacy:
            raise RequestError(f"Unrecognized request argument supplied: {unknown[0]}")
        if prompts is not None and server.dialect.refuses_echo_logprobs and body.get("logprobs"):
            raise RequestError(
                "Setting 'echo' and 'logprobs' at the same time is not supported for this model."
            )
        wire.refuse_streaming(body)
        # A provider without logprobs ignores the parameters, however they are set.
        top_count = None
        if server.serve_logprobs:
            count = wire.legacy_top_count if legacy else wire.chat_top_count
            top_count = count(body)
        echo_limit = wire.echo_max_tokens(body) if prompts is not None else 0
        try:
            if isinstance(resolved, Exception):
                raise resolved
            if prompts is None:
                reply = as_reply(server.responder(request))
        except Exception as error:
            server._record_error(error)
            message = f"the responder raised {type(error).__name__}: {error}"
            return self._send_json(500, wire.error_body(message, "server_error"))
        if prompts is not None:
            answer = protocol.echo_completion_body(
                request, prompts, resolved, top_count=top_count, max_tokens=echo_limit
            )
            if server.dialect.prompt_logprobs:
                protocol.add_prompt_logprobs(answer, prompts)
            return self._send_json(200, self._dialect_fields(answer))
        generation = protocol.generate(reply, body, top_count or 0)
        build = protocol.text_completion_body if legacy else protocol.chat_completion_body
        answer = build(request, generation, top_count is not None)
        if (
            server.dialect.prompt_logprobs
            and not legacy
            and body.get("prompt_logprobs") is not None
        ):
            answer["prompt_logprobs"] = echo.chat_prompt_logprobs(server.responder, request)
        self._send_json(200, self._dialect_fields(answer))
        return None

    def _dialect_fields(self, answer: dict[str, Any]) -> dict[str, Any]:
        """vLLM's responses have no ``system_fingerprint`` (its engine is at /version)."""
        if self.model_server.dialect.name == "vllm":
            answer.pop("system_fingerprint", None)
        return answer

    def _answer_message(
        self, server: ModelServer, request: ChatRequest, body: dict[str, Any]
    ) -> None:
        """An Anthropic Messages answer: the reply's text, no log-probabilities."""
        wire.refuse_streaming(body)
        try:
            reply = as_reply(server.responder(request))
        except Exception as error:
            server._record_error(error)
            message = f"the responder raised {type(error).__name__}: {error}"
            return self._send_json(500, server.dialect.error_body(500, message))
        generation = protocol.generate(reply, anthropic.generation_limits(body), 0)
        answer = anthropic.message_body(request, generation, reply.text)
        self._send_json(200, answer, {"request-id": anthropic.request_id()})
        return None

    def _answer_probe(self, server: ModelServer, body: dict[str, Any]) -> None:
        """The checkpoint fingerprint: from ``checkpoint`` and ``jitter``, never faulted."""
        with server._stats_lock:
            server._probes += 1
            rng = random.Random(server._random.random())
        top = wire.chat_top_count(body) if server.serve_logprobs else 0
        model = body.get("model") if isinstance(body.get("model"), str) else DEFAULT_MODEL_ID
        answer = checkpoints.probe_body(str(model), server.checkpoint, server.jitter, top or 0, rng)
        self._send_json(200, answer)

    def _suffer(self, fault: Fault) -> bool:
        """Act out ``fault``; True if that was the whole answer."""
        if fault.kind == "status":
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = _format_seconds(fault.retry_after)
            dialect = self.model_server.dialect
            body = dialect.error_body(fault.status_code, fault.message, code=fault.error_type)
            self._send_json(fault.status_code, body, headers)
            return True
        if fault.kind == "malformed_json":
            broken = b'{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{"ind'
            self._send(200, broken, "application/json")
            return True
        if fault.kind == "hang":
            if not self.model_server._pause(fault.seconds):
                self._drop()
                return True
            return False  # hung long enough; now answer as usual
        self._drop()
        return True

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked_body()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked_body(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after each chunk

    def _send_not_found(self, path: str) -> None:
        message = f"no such endpoint: {self.command} {path}"
        self._send_json(404, self.model_server.dialect.error_body(404, message))

    def _send_json(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode("utf-8")
        self._send(status, data, "application/json", headers)

    def _send(
        self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self._leave_flight()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            # The client gave up (a timeout, or stop() closed the socket).
            self.close_connection = True


def _model_named(raw_body: bytes) -> object:
    """The ``model`` a body names, to route by (None when it is not JSON: refused later)."""
    try:
        body = json.loads(raw_body)
    except ValueError:
        return None
    return body.get("model") if isinstance(body, dict) else None


def _parse_json(raw_body: bytes) -> dict[str, Any]:
    return wire.parse_body(raw_body)


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"
