"""Model revisions: which checkpoint answers under a model name.

Teams often serve each new checkpoint under the same name at the same URL, so the
name alone cannot tell cached answers of one checkpoint from the next. A revision
comes from two places: the user's ``--behavior-model=NAME@REVISION``
(:func:`split_revision`), and what the endpoint itself reports: vLLM lists the
served weights' path as ``root`` in ``GET /v1/models`` (:func:`served_revision`).

The look-up uses the standard library's HTTP client, imported on first use.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_behavior.errors import brief

# How much of a /models answer is read: a listing of a few models is a few kB.
MAX_LISTING_BYTES = 1 << 20
# The version suffix of Vertex AI model names, which is part of the name.
_VERTEX_VERSION = re.compile(r"\d+|latest")
_EXAMPLE = "NAME@REVISION, e.g. hosted_vllm/my-finetune@ckpt-1200"


@dataclass(frozen=True)
class ModelName:
    """A model name as litellm routes it, and the revision the user gave (or None)."""

    name: str
    revision: str | None


def split_revision(model: str) -> ModelName:
    """Split ``NAME@REVISION`` on its last ``@``: ``a/b@ckpt-1200`` is ``a/b``, ``ckpt-1200``.

    What follows the ``@`` is a revision only when it contains no ``/``; otherwise
    the ``@`` belongs to the name (``openai/foo@bar/baz`` is one name). Vertex AI
    names carry a version after ``@`` (``vertex_ai/claude-3-5-haiku@20241022``,
    ``text-unicorn@001``): on those, and on names without a provider, a lone ``@``
    followed by digits or ``latest`` is the name's own; add a revision after it
    (``vertex_ai/claude-3-5-haiku@20241022@ckpt-2``). Raises ValueError when the
    revision or the name around the ``@`` is empty.
    """
    name, at, revision = model.rpartition("@")
    if not at or "/" in revision:
        return ModelName(model, None)
    provider = model.partition("/")[0] if "/" in model else ""
    if (
        (provider.startswith("vertex_ai") or not provider)
        and "@" not in name
        and _VERTEX_VERSION.fullmatch(revision)
    ):
        return ModelName(model, None)
    if not revision.strip():
        raise ValueError(
            f"the model {brief(model)} has no revision after '@'; write {_EXAMPLE}, "
            "or leave out the '@'"
        )
    if not name:
        raise ValueError(f"the model {brief(model)} has no name before '@'; write {_EXAMPLE}")
    return ModelName(name, revision)


def served_id(litellm_model: str) -> str:
    """The id an endpoint lists a model under: the name without its ``provider/`` prefix.

    ``hosted_vllm/my-finetune`` is served as ``my-finetune``; only the first segment
    goes, so ``openai/org/model`` is served as ``org/model``.
    """
    _, slash, rest = litellm_model.partition("/")
    return rest if slash and rest else litellm_model


def served_revision(
    api_base: str, name: str, *, timeout: float = 5.0, api_key: str | None = None
) -> str | None:
    """The revision the endpoint at ``api_base`` reports for the model ``name``, or None.

    Reads ``GET {api_base}/models`` and takes the ``root`` (the served weights' path,
    as vLLM reports it) of the entry whose id is :func:`served_id` of ``name`` (the
    only entry, if none has that id). ``name`` is litellm's model name without a
    user's ``@REVISION``. A best-effort read: any failure (no answer, a status
    other than 200, a body that is not such a listing) is None, never an exception,
    and the call returns within ``timeout`` seconds, however slowly the endpoint answers.
    """
    url = api_base.rstrip("/") + "/models"
    outcome: list[str | None] = []
    worker = threading.Thread(
        target=lambda: outcome.append(_read_revision(url, name, timeout, api_key)),
        name="pytest-behavior-served-revision",
        daemon=True,  # a worker still waiting after ``timeout`` gives up on its own soon after
    )
    worker.start()
    worker.join(timeout)
    return outcome[0] if outcome else None


def listed_entry(listing: Any, name: str) -> Mapping[str, Any] | None:
    """The ``/v1/models`` entry of ``name``: the one with its served id, or the only one."""
    data = listing.get("data") if isinstance(listing, Mapping) else None
    if not isinstance(data, list):
        return None
    entries = [entry for entry in data if isinstance(entry, Mapping)]
    wanted = served_id(name)
    matches = [entry for entry in entries if entry.get("id") == wanted]
    return matches[0] if matches else entries[0] if len(entries) == 1 else None


def reported_revision(listing: Any, name: str) -> str | None:
    """The revision a ``/models`` listing reports for ``name``: its ``root``, or None.

    A ``root`` equal to the entry's id says nothing the name did not (vLLM serving
    a path under no other name), so that is None too.
    """
    entry = listed_entry(listing, name)
    if entry is None:
        return None
    root = entry.get("root")
    if not isinstance(root, str) or not root.strip() or root == entry.get("id"):
        return None
    return root


def _read_revision(url: str, name: str, timeout: float, api_key: str | None) -> str | None:
    """The worker's side of :func:`served_revision`; gives up once ``timeout`` has passed."""
    deadline = time.monotonic() + timeout
    try:
        # The standard library's client: a cached rerun asks this once, and httpx's
        # import alone cost more than the request (the listing is one small GET).
        import json
        import urllib.request

        if not url.lower().startswith(("http://", "https://")):
            return None  # urllib would also open file: and ftp: URLs
        headers = {"Accept": "application/json"}
        if api_key is not None:
            headers["Authorization"] = f"Bearer {api_key}"
        # Proxies from the environment as httpx honours them; a redirect is not followed.
        opener = urllib.request.build_opener(_no_redirect())
        request = urllib.request.Request(url, headers=headers)
        with opener.open(request, timeout=timeout) as response:
            if response.status != 200:
                return None
            body = bytearray()
            while chunk := response.read1(1 << 16):
                body += chunk
                if len(body) > MAX_LISTING_BYTES or time.monotonic() > deadline:
                    return None
        return reported_revision(json.loads(body), name)
    except Exception:  # best effort: whatever went wrong, there is no reported revision
        return None


def _no_redirect() -> type:
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None  # a 3xx is then an HTTPError: no revision

    return NoRedirect
