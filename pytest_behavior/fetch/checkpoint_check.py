"""Once per model and run: is the checkpoint behind the name the one whose answers are cached?

See checkpoint.py for what is read and asked. The outcome is the ``revision`` every
request of the model carries into its cache key: what the endpoint says about the model,
plus the digest of the fingerprint that was current when its answers were asked. A
changed fingerprint gets a new digest, so the answers are asked afresh, and the run
says so in one line (``note``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_behavior.fetch.checkpoint import (
    CheckpointRecord,
    Description,
    Fingerprint,
    ProbeFailed,
    ServingStack,
    describe,
    probe,
    record_key,
    same_checkpoint,
)
from pytest_behavior.fetch.exact import OPENAI_COMPATIBLE

if TYPE_CHECKING:
    from pytest_behavior.cache.backend import AnswerCache

# The key litellm would send to these providers' endpoints (an OpenAI-compatible server
# started with --api-key wants it on /v1/models and the probe too).
_KEY_VARIABLES = {"openai": "OPENAI_API_KEY", "hosted_vllm": "HOSTED_VLLM_API_KEY"}


@dataclass(frozen=True)
class CheckpointCheck:
    """What the run learnt about one model's checkpoint."""

    # The cache key part of every request of the model (None: nothing known).
    revision: str | None
    description: Description
    # The engine, as the endpoint reports it (for reports and baselines).
    stack: ServingStack
    # One line for the run to print (a changed checkpoint, or one not checked), or None.
    note: str | None = None
    # Whether the probe was sent this run.
    probed: bool = False


def check_checkpoint(
    cache: AnswerCache,
    model: str,
    name: str,
    api_base: str,
    *,
    asks: bool,
    readonly: bool,
    timeout: float,
) -> CheckpointCheck:
    """Describe ``model`` (litellm name ``name``) at ``api_base``, probe it once when the
    run asks anything, compare with the stored record, and store the new one."""
    api_key = _api_key(name)
    description = describe(api_base, name, timeout=min(5.0, timeout), api_key=api_key)
    key = record_key(model, api_base)
    stored = CheckpointRecord.from_answer(cache.get(key))
    known = stored if stored is not None and stored.revision == description.revision else None
    if not asks or name.partition("/")[0] not in OPENAI_COMPATIBLE:
        # (The probe speaks OpenAI's chat protocol; other providers' servers are
        # identified by what their listing says.)
        note = None
        if readonly:
            note = (
                f"behavior: the checkpoint behind {model} was not checked "
                "(--behavior-cache-mode=readonly sends nothing): its cached answers are used "
                "as they are"
            )
        return _outcome(description, known.fingerprint if known else None, description.stack, note)
    try:
        fresh, reported = probe(api_base, name, timeout=timeout, api_key=api_key)
    except ProbeFailed as error:
        note = (
            f"behavior: the checkpoint behind {model} could not be checked (the fingerprint "
            f"probe got {error}); answers cached for {description.revision or 'its name'} "
            "are used as they are"
        )
        return _outcome(description, known.fingerprint if known else None, description.stack, note)
    stack = ServingStack(description.stack.server, reported.system_fingerprint)
    note = None
    if known is not None and same_checkpoint(known.fingerprint, fresh):
        return _outcome(description, known.fingerprint, stack, None, probed=True)
    if known is not None:
        note = (
            f"behavior: the checkpoint behind {model} at {api_base} changed (same name, "
            f"same listing; the fingerprint moved by {_nats(known.fingerprint, fresh)}, "
            f"top token {known.fingerprint.summary()} -> {fresh.summary()}): "
            "its answers are asked afresh"
        )
    elif stored is not None:
        note = (
            f"behavior: {model} at {api_base} now serves {description.revision or 'another model'}"
            f" (was {stored.revision or 'unnamed'}): its answers are asked afresh"
        )
    cache.set_many(
        [(key, CheckpointRecord(description.revision, fresh).to_answer())],
        origins={key: {"model": model, "record": "checkpoint"}},
    )
    return _outcome(description, fresh, stack, note, probed=True)


def _outcome(
    description: Description,
    fingerprint: Fingerprint | None,
    stack: ServingStack,
    note: str | None,
    *,
    probed: bool = False,
) -> CheckpointCheck:
    parts = [part for part in (description.revision,) if part]
    if fingerprint is not None:
        parts.append(f"fp:{fingerprint.generation}")
    revision = " ".join(parts) or None
    return CheckpointCheck(revision, description, stack, note, probed)


def _nats(old: Fingerprint, new: Fingerprint) -> str:
    distance = old.distance(new)
    return "more than the tolerance" if distance == float("inf") else f"{distance:.2f} nats"


def _api_key(name: str) -> str | None:
    variable = _KEY_VARIABLES.get(name.partition("/")[0])
    return (os.environ.get(variable) or None) if variable else None
