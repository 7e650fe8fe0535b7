"""Cache keys: a request -> the hex digest that identifies its answer.

A key covers everything that changes an answer (model, endpoint, the full
messages, every sampling parameter, the sample index) and nothing secret:
parameters that look like credentials are refused before they are hashed, so an
API key can never end up in the cache or in a report.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

from pytest_behavior.values import ModelRequest

if TYPE_CHECKING:
    pass

KEY_VERSION = 1
SECRET_MARKERS = ("key", "token", "secret", "password", "authorization", "credential")
_SECRET_PATTERN = re.compile("|".join(SECRET_MARKERS))

# Built once: json.dumps with options builds a new encoder per call, which was half
# the cost of a key (every case item derives keys several times per run).
_KEY_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def is_secret_param(name: str) -> bool:
    lowered = name.lower()
    return lowered != "max_tokens" and _SECRET_PATTERN.search(lowered) is not None


def request_key(request: ModelRequest) -> str:
    """A hex digest that identifies the answer a request produces."""
    for name, _ in request.params:
        if is_secret_param(name):
            raise ValueError(f"refusing to derive a cache key from secret parameter {name!r}")
    fields: dict[str, Any] = {
        "v": KEY_VERSION,
        "model": request.model,
        "api_base": request.api_base,
        "messages": request.messages,
        "params": sorted(request.params),
        "sample": request.sample_index,
    }
    if request.revision is not None:
        # The checkpoint behind the name (NAME@REVISION, or what the endpoint reports):
        # a re-deployed model under an old name is asked afresh.
        fields["revision"] = request.revision
    if request.prompt_format is not None:
        # A declared format (prompt_format.py); unset keeps every earlier key valid.
        fields["format"] = request.prompt_format
    if request.continuations:
        # Exact scoring: only these requests carry continuations, so their keys can
        # never meet a generated (top-k or text) answer's; other keys are unchanged.
        fields["method"] = "exact"
        fields["continuations"] = request.continuations
    payload = _KEY_ENCODER.encode(fields)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def origin_fields(request: ModelRequest) -> dict[str, str]:
    """Who answered, stored beside the answer (never part of the key), so that
    ``python -m pytest_behavior cache info`` and ``cache prune --model`` can tell."""
    fields = {"model": request.model}
    if request.revision is not None:
        fields["revision"] = request.revision
    return fields
