"""Which checkpoint answers under a served model name: what the endpoint says, and a fingerprint.

Teams serve each new checkpoint under the same name at the same URL, so cached answers
are keyed on everything the endpoint says about the model (:func:`describe`): the whole
``GET /v1/models`` entry (vLLM's ``root``, llama.cpp's ``meta``: parameters, vocabulary,
size) and, where served, llama.cpp's ``GET /props`` (the model file, the chat template).
No server reports a hash of its weights, and a retrained checkpoint written over the old
file changes none of that, so each run also asks one fixed question once per model
(:data:`PROBE`: one generated token with its top log-probabilities) and compares the
answer with the one stored beside the cached answers (:func:`same_checkpoint`). A
different answer is a different checkpoint: the answers of this one are asked afresh.

Log-probabilities, not text, and a tolerance: llama.cpp's server with several parallel
slots batches requests together, and the kernels' batch shapes move log-probabilities a
little between identical requests; a different checkpoint moves them far more, or
changes the top tokens.

Everything here is the standard library (issue 23: a cached rerun must not pay for
importing litellm): plain HTTP to OpenAI-compatible endpoints.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pytest_behavior.fetch.revision import MAX_LISTING_BYTES, listed_entry, served_id
from pytest_behavior.values import Answer

# The probe: a fixed question whose first generated token is spread over several
# candidates, so a changed checkpoint moves their log-probabilities.
PROBE_QUESTION = "Name one colour. Answer with a single word."
PROBE_TOP_LOGPROBS = 10
# Sent with the probe so a test server can tell it from the suite's requests
# (pytest_behavior.testing counts it apart); real servers ignore the header.
PROBE_HEADER = "X-Pytest-Behavior-Probe"
# Log-probabilities of the same tokens may move this much (nats) between two answers of
# one checkpoint. Measured on llama-server (build 11434, SmolLM2-135M): the probe's answers
# were bit-identical with --parallel 1 and 4, alone or beside 3 busy requests
# (benchmarks/llama_server_agreement.py); kernels that change with the batch shape have
# moved other prompts' log-probabilities by up to 0.47 nats (p90 0.06) on llama.cpp, and a
# different model changes the top tokens themselves.
TOLERANCE = 0.25
# Fields of a /v1/models entry that change without the weights changing: the time of
# the request, vLLM's per-request permission ids, context sizes set by server flags.
_VOLATILE = frozenset({"created", "permission", "max_model_len"})
_VOLATILE_META = frozenset({"n_ctx"})
# /props fields that say which model answers (the file, the chat template it applies).
_PROPS_IDENTITY = ("model_path", "chat_template")
_RECORD_MARK = "pytest-behavior:checkpoint"
# The finish_reason of the record of the scoring method a probe chose (run.py).
METHOD_MARK = "pytest-behavior:scoring-method"


@dataclass(frozen=True)
class ServingStack:
    """What the endpoint says about the engine that serves the model (not the weights).

    ``server``: llama.cpp's ``build_info`` from ``/props``, or vLLM's ``/version``;
    ``system_fingerprint``: from a completion (llama.cpp and OpenAI report it). None where
    the endpoint does not say. vLLM does not say which dtype it serves.
    """

    server: str | None = None
    system_fingerprint: str | None = None


@dataclass(frozen=True)
class Description:
    """What an endpoint says about one served model, reduced to what changes with it."""

    # The served weights' path: vLLM's root, else llama.cpp's /props model_path.
    label: str | None
    # Canonical JSON of the rest (the /v1/models entry without volatile fields, the
    # /props identity fields); None when the entry says nothing beyond its name.
    details: str | None
    stack: ServingStack = ServingStack()
    # The server renders the model's chat template itself (llama.cpp's /props names
    # one; vLLM's chat endpoint continues a final assistant message): chat prompts can
    # be scored exactly there (fetch/chat_exact.py).
    renders_chat: bool = False
    # How many requests the server answers at once (llama.cpp's /props total_slots):
    # more in flight would wait in its queue, on the requests' clocks.
    slots: int | None = None

    @property
    def revision(self) -> str | None:
        """The checkpoint as a cache key part: the label alone where that is all there is
        (vLLM's root, as before), else the label and a digest of the details."""
        if self.details is None:
            return self.label
        digest = hashlib.sha256(self.details.encode("utf-8")).hexdigest()[:12]
        return f"{self.label} [{digest}]" if self.label else f"[{digest}]"


@dataclass(frozen=True)
class Fingerprint:
    """The answer to :data:`PROBE_QUESTION`: the generated token and the top candidates."""

    text: str
    top: tuple[tuple[str, float], ...]

    @property
    def generation(self) -> str:
        """A short digest naming this answer; part of the cache key of the answers asked
        while it was the checkpoint's fingerprint."""
        payload = json.dumps([self.text, [[t, round(lp, 6)] for t, lp in self.top]])
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:12]

    def distance(self, other: Fingerprint) -> float:
        """How far apart two answers are, in nats: the largest change of a candidate's
        log-probability among the candidates both list (inf when they share fewer than
        half of them, or one has log-probabilities and the other not)."""
        if not self.top or not other.top:
            return 0.0 if (self.text, self.top) == (other.text, other.top) else math.inf
        mine, theirs = dict(self.top), dict(other.top)
        shared = mine.keys() & theirs.keys()
        if 2 * len(shared) < min(len(mine), len(theirs)):
            return math.inf
        return max(abs(mine[token] - theirs[token]) for token in shared)

    def summary(self) -> str:
        best = max(self.top, key=lambda pair: pair[1])[0] if self.top else self.text
        return repr(best)


def same_checkpoint(stored: Fingerprint, fresh: Fingerprint, tolerance: float = TOLERANCE) -> bool:
    return stored.distance(fresh) <= tolerance


# -- the record stored beside the answers ------------------------------------------------


@dataclass(frozen=True)
class CheckpointRecord:
    """What the cache keeps per model and endpoint: the description and fingerprint seen last."""

    revision: str | None
    fingerprint: Fingerprint

    def to_answer(self) -> Answer:
        """As an Answer, the only thing every cache store holds (cache.backend.AnswerCache)."""
        text = json.dumps({"revision": self.revision, "text": self.fingerprint.text})
        return Answer(text=text, top_logprobs=(self.fingerprint.top,), finish_reason=_RECORD_MARK)

    @classmethod
    def from_answer(cls, answer: Answer | None) -> CheckpointRecord | None:
        if answer is None or answer.finish_reason != _RECORD_MARK:
            return None
        try:
            data = json.loads(answer.text)
            top = answer.top_logprobs[0] if answer.top_logprobs else ()
            revision = data["revision"]
            return cls(revision, Fingerprint(str(data["text"]), tuple(top)))
        except (ValueError, KeyError, TypeError):
            return None


def record_key(model: str, api_base: str) -> str:
    """Where the record of ``model`` at ``api_base`` lies in the cache (never an answer's key:
    those hash a request, this hashes a different shape)."""
    payload = json.dumps({"record": "checkpoint", "v": 1, "model": model, "api_base": api_base})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def method_key(model: str, api_base: str | None, revision: str | None) -> str:
    """Where the scoring method a probe chose for this checkpoint is recorded."""
    payload = json.dumps(
        {"record": "scoring-method", "v": 1, "model": model, "api_base": api_base, "rev": revision}
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


# -- asking the endpoint ------------------------------------------------------------------


class ProbeFailed(Exception):
    """The endpoint did not answer the probe usably; ``str()`` says why, in a few words."""


def describe(
    api_base: str, name: str, *, timeout: float = 5.0, api_key: str | None = None
) -> Description:
    """What the endpoint at ``api_base`` says about ``name`` (litellm's name, no @REVISION).

    Best effort, like revision.served_revision: what cannot be read is left out.
    """
    entry: Mapping[str, Any] | None = None
    try:
        listing = _get_json(api_base.rstrip("/") + "/models", timeout, api_key)
        entry = listed_entry(listing, name)
    except ProbeFailed:
        pass
    props: Mapping[str, Any] | None = None
    try:
        found = _get_json(_server_root(api_base) + "/props", timeout, api_key)
        props = found if isinstance(found, Mapping) else None
    except ProbeFailed:
        pass
    engine = None
    if entry is not None and entry.get("owned_by") == "vllm":
        # vLLM names its version at /version (its responses carry no system_fingerprint).
        try:
            found = _get_json(_server_root(api_base) + "/version", timeout, api_key)
            version = found.get("version") if isinstance(found, Mapping) else None
            engine = f"vLLM {version}" if isinstance(version, str) and version else None
        except ProbeFailed:
            pass
    return description_of(entry, props, engine)


def description_of(
    entry: Mapping[str, Any] | None,
    props: Mapping[str, Any] | None,
    engine: str | None = None,
) -> Description:
    """``engine``: what serves the model where the endpoint names it apart (vLLM's version)."""
    details: dict[str, Any] = {}
    label = None
    if entry is not None:
        root = entry.get("root")
        if isinstance(root, str) and root.strip() and root != entry.get("id"):
            label = root
        for field, value in entry.items():
            if field in _VOLATILE or field in ("id", "object", "owned_by", "root") or value is None:
                continue
            if field == "meta" and isinstance(value, Mapping):
                value = {k: v for k, v in value.items() if k not in _VOLATILE_META}
            details[field] = value
    server = engine
    renders_chat = False
    slots = None
    if props is not None:
        total = props.get("total_slots")
        slots = total if isinstance(total, int) and total > 0 else None
        template = props.get("chat_template")
        renders_chat = isinstance(template, str) and bool(template.strip())
        for field in _PROPS_IDENTITY:
            if props.get(field) is not None:
                details[f"props.{field}"] = props[field]
        path = props.get("model_path")
        if label is None and isinstance(path, str) and path:
            label = path
        build = props.get("build_info")
        server = build if isinstance(build, str) and build else None
    if entry is not None and entry.get("owned_by") == "vllm":
        renders_chat = True  # its chat endpoint continues a final assistant message
    canonical = json.dumps(details, sort_keys=True, ensure_ascii=False) if details else None
    return Description(label, canonical, ServingStack(server=server), renders_chat, slots)


def probe(
    api_base: str, name: str, *, timeout: float = 30.0, api_key: str | None = None
) -> tuple[Fingerprint, ServingStack]:
    """Ask :data:`PROBE_QUESTION` once; raises ProbeFailed when no usable answer comes back."""
    body = {
        "model": served_id(name),
        "messages": [{"role": "user", "content": PROBE_QUESTION}],
        "max_tokens": 1,
        "temperature": 0.0,
        "logprobs": True,
        "top_logprobs": PROBE_TOP_LOGPROBS,
    }
    answer = _post_json(api_base.rstrip("/") + "/chat/completions", body, timeout, api_key)
    try:
        choice = answer["choices"][0]
        text = choice["message"].get("content") or ""
        content = (choice.get("logprobs") or {}).get("content") or []
        candidates = content[0].get("top_logprobs") or [] if content else []
        top = tuple(
            sorted(
                ((str(item["token"]), float(item["logprob"])) for item in candidates),
                key=lambda pair: (-pair[1], pair[0]),
            )
        )
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
        raise ProbeFailed(f"an answer not in OpenAI's chat format ({error!r:.60})") from None
    fingerprint = answer.get("system_fingerprint")
    stack = ServingStack(system_fingerprint=fingerprint if isinstance(fingerprint, str) else None)
    return Fingerprint(str(text), top), stack


def _server_root(api_base: str) -> str:
    """``http://host:port/v1`` -> ``http://host:port``: where llama.cpp serves /props."""
    parts = urlsplit(api_base.rstrip("/"))
    path = parts.path[: -len("/v1")] if parts.path.endswith("/v1") else parts.path
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json", PROBE_HEADER: "checkpoint"}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def _get_json(url: str, timeout: float, api_key: str | None) -> Any:
    return _exchange(url, None, timeout, api_key)


def _post_json(url: str, body: Mapping[str, Any], timeout: float, api_key: str | None) -> Any:
    return _exchange(url, json.dumps(body).encode("utf-8"), timeout, api_key)


def _exchange(url: str, data: bytes | None, timeout: float, api_key: str | None) -> Any:
    import urllib.error
    import urllib.request

    if urlsplit(url).scheme not in ("http", "https"):
        raise ProbeFailed(f"not an http(s) address: {url}")
    headers = _headers(api_key)
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers)
    deadline = time.monotonic() + timeout
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read(MAX_LISTING_BYTES + 1)
    except urllib.error.HTTPError as error:
        raise ProbeFailed(f"HTTP {error.code} from {url}") from None
    except (OSError, ValueError) as error:
        raise ProbeFailed(f"no answer from {url} ({type(error).__name__})") from None
    if len(raw) > MAX_LISTING_BYTES or time.monotonic() > deadline:
        raise ProbeFailed(f"an answer from {url} too large or too late")
    try:
        return json.loads(raw)
    except ValueError:
        raise ProbeFailed(f"an answer from {url} that is not JSON") from None
