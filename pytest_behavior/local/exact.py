"""The plugin's own exact-scoring request to its embedded server: only what it reads.

A ``local/...`` model is served by :mod:`pytest_behavior.local.server`, which
answers ``POST /v1/continuation_logprobs`` with each labelled answer's
log-probability as the continuation of the prompt, the same floats its echo
protocol gives (see continuations.py) at a fraction of the work. The request
goes over the standard library's asyncio streams, one connection per request
(loopback, microseconds): no litellm, whose import costs seconds and whose
text-completion path costs about twice the CPU of a chat call.

Errors carry what the retry and stop rules read (retrying.py, stopping.py): an
HTTP status as ``status_code``, and a timeout or a refused or dropped connection
under the names litellm gives them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pytest_behavior.values import Answer, ChoiceLogprob, ModelRequest

if TYPE_CHECKING:
    from pytest_behavior.fetch.client import Endpoint

CONTINUATION_ROUTE = "/v1/continuation_logprobs"


class LocalServerError(Exception):
    """The local server answered with an error status."""

    def __init__(self, status_code: int | None, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


class Timeout(LocalServerError):
    """No answer within the request timeout (named as litellm's: retried, counts to a stall)."""


class APIConnectionError(LocalServerError):
    """The connection was refused or dropped (named as litellm's: retried, counts to a stall)."""


async def local_exact_complete(
    request: ModelRequest, endpoint: Endpoint, *, timeout: float
) -> Answer:
    """Each continuation's log-probability from the embedded server, within ``timeout``."""
    import asyncio

    address = urlsplit(endpoint.api_base or "")
    host, port = address.hostname or "127.0.0.1", address.port or 80
    body = json.dumps(
        {"prompt": request.prompt, "continuations": list(request.continuations)}
    ).encode("utf-8")
    try:
        status, payload = await asyncio.wait_for(
            post_json(host, port, CONTINUATION_ROUTE, body), timeout
        )
    except TimeoutError as exc:
        raise Timeout(None, f"the local server gave no answer in {timeout:g} s") from exc
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        raise APIConnectionError(None, f"the local server at {host}:{port}: {exc!r}") from exc
    if status != 200:
        message = error_message(payload)
        raise LocalServerError(status, f"{message or payload!r} (status {status})")
    return answer_from_continuations(payload, request.continuations)


def error_message(payload: Any) -> str | None:
    """The ``error.message`` of an OpenAI-style error body, None when it has none."""
    error = payload.get("error") if isinstance(payload, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else None


def answer_from_continuations(payload: Any, continuations: tuple[str, ...]) -> Answer:
    """The answer exact scoring caches: in the shape ``exact.answer_from_echo`` gives."""
    entries = sorted(payload.get("data") or [], key=lambda entry: entry["index"])
    if len(entries) != len(continuations):
        raise LocalServerError(
            500, f"the local server scored {len(entries)} of {len(continuations)} continuations"
        )
    scored = tuple(
        ChoiceLogprob(continuation, float(entry["logprob"]), int(entry["tokens"]))
        for continuation, entry in zip(continuations, entries, strict=True)
    )
    return Answer(text="", choice_logprobs=scored, finish_reason="echo")


async def post_json(
    host: str, port: int, path: str, body: bytes | None, headers: str = ""
) -> tuple[int, Any]:
    """One HTTP/1.1 request (POST with a JSON body, GET without one); the status and
    the decoded JSON answer. ``headers``: extra header lines, each ending in CRLF."""
    import asyncio

    reader, writer = await asyncio.open_connection(host, port)
    try:
        verb = "GET" if body is None else "POST"
        body = body or b""
        head = (
            f"{verb} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{headers}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        writer.write(head.encode("ascii") + body)
        await writer.drain()
        status_line, *header_lines = (
            (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        )
        status = int(status_line.split()[1])
        fields = dict(line.split(":", 1) for line in header_lines if ":" in line)
        length = {name.strip().lower(): value for name, value in fields.items()}.get(
            "content-length"
        )
        raw = await (reader.readexactly(int(length)) if length else reader.read())
        return status, json.loads(raw)
    finally:
        writer.close()
