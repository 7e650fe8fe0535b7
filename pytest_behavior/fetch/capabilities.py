"""What a provider can return for scoring, known before a paid request wherever litellm can tell.

``scoring: auto`` (and ``logprob``) picks, per model, the best method its endpoint serves:

- **exact** where it serves prompt log-probabilities (a completions endpoint that
  answers ``echo`` with ``logprobs``: vLLM, llama.cpp's server, OpenAI-compatible
  proxies in front of them);
- **topk** where it serves ``top_logprobs`` of generated tokens (OpenAI chat);
- **generate** where it serves neither (Anthropic, and every provider litellm sends
  no ``logprobs`` to): the answer is parsed from the text, ``samples: K`` asks K times.

litellm knows much of this in advance: the provider a model name routes to, the
OpenAI parameters that provider takes (``get_supported_openai_params``; a missing
``logprobs`` means litellm would raise ``UnsupportedParamsError`` before sending),
and whether a known model is chat-only (its model map's ``mode``). What it cannot
tell (an OpenAI-compatible server behind an unknown name) the first request of
the run finds out, and that request is a case's own, cached like any other: a
refusal (``UnsupportedParamsError``, a 404 on completions, a 400 naming logprobs)
moves the model to the next method.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pytest_behavior.errors import FailureKind
from pytest_behavior.fetch.exact import OPENAI_COMPATIBLE, ExactScoringUnsupported

# Providers whose legacy completions endpoint litellm reaches with ``echo``
# (exact.text_completion_model routes the OpenAI-compatible ones there).
_COMPLETIONS_PROVIDERS = OPENAI_COMPATIBLE | {"text-completion-openai"}
# A 400 naming logprobs: an OpenAI-compatible server refusing what litellm passed on.
_LOGPROB_REFUSAL = re.compile(r"logprob", re.IGNORECASE)
_BAD_REQUEST = re.compile(r"^(?:BadRequestError|UnprocessableEntityError)\b|\(status 4(?:00|22)\)")


@dataclass(frozen=True)
class Capabilities:
    """What a model's provider serves; None where only the endpoint's answer can tell."""

    provider: str
    # Prompt log-probabilities (exact scoring).
    prompt_logprobs: bool | None
    # ``top_logprobs`` of generated tokens (top-k scoring).
    top_logprobs: bool | None
    # Why, in a few words, for the run's header and the docs ("" when unknown).
    reason: str = ""

    def first_choice(self) -> str:
        """The method to try first: exact unless known absent, then top-k, then generate."""
        if self.prompt_logprobs is not False:
            return "exact"
        return "topk" if self.top_logprobs is not False else "generate"

    def after_exact(self) -> str:
        """The method when exact scoring is not available."""
        return "topk" if self.top_logprobs is not False else "generate"


UNKNOWN = Capabilities(provider="", prompt_logprobs=None, top_logprobs=None)


def provider_capabilities(litellm_model: str) -> Capabilities:
    """What litellm knows, without sending anything, of ``litellm_model``'s provider."""
    from pytest_behavior.fetch.litellm_api import import_litellm

    litellm = import_litellm()
    provider, name = _route(litellm, litellm_model)
    if not provider:
        return UNKNOWN
    prompt: bool | None = None
    reasons = []
    if provider not in _COMPLETIONS_PROVIDERS:
        prompt = False
        reasons.append(f"litellm reaches {provider} through its chat API only (no echo)")
    elif provider == "openai" and _model_mode(litellm, name, provider) == "chat":
        prompt = False
        reasons.append(f"OpenAI serves {name} on chat completions only (no echo)")
    top = _takes_logprobs(litellm, name, provider)
    if top is False:
        reasons.append(f"litellm sends no logprobs to {provider}")
    return Capabilities(
        provider=provider, prompt_logprobs=prompt, top_logprobs=top, reason="; ".join(reasons)
    )


def _route(litellm: object, litellm_model: str) -> tuple[str, str]:
    """(provider, model name without it) as litellm routes the name; ("", name) if it cannot."""
    try:
        name, provider, _, _ = litellm.get_llm_provider(model=litellm_model)  # type: ignore[attr-defined]
    except Exception:  # an unknown name: the endpoint's first answer will tell
        return "", litellm_model
    return str(provider or ""), str(name)


def _model_mode(litellm: object, name: str, provider: str) -> str | None:
    """The model map's ``mode`` ("chat", "completion"), or None for a name it does not know."""
    try:
        info = litellm.get_model_info(model=name, custom_llm_provider=provider)  # type: ignore[attr-defined]
    except Exception:  # not in litellm's model map: a self-hosted or new model
        return None
    mode = info.get("mode") if isinstance(info, dict) else getattr(info, "mode", None)
    return str(mode) if mode else None


def _takes_logprobs(litellm: object, name: str, provider: str) -> bool | None:
    """Whether litellm passes ``logprobs``/``top_logprobs`` on to the provider (None: unmapped)."""
    try:
        supported = litellm.get_supported_openai_params(  # type: ignore[attr-defined]
            model=name, custom_llm_provider=provider
        )
    except Exception:  # a provider litellm has no table for
        return None
    if supported is None:
        return None
    return "logprobs" in supported and "top_logprobs" in supported


def is_logprob_refusal(reason: str) -> bool:
    """Whether a failed request's one-line reason says the endpoint takes no logprobs:
    litellm's UnsupportedParamsError, or a 400 whose message names logprobs."""
    if reason.startswith("UnsupportedParamsError"):
        return True
    return bool(_BAD_REQUEST.search(reason)) and bool(_LOGPROB_REFUSAL.search(reason))


def failure_kind(exc: BaseException, reason: str) -> FailureKind:
    """What a request's final error means: the endpoint refusing exact scoring (whatever
    the message of the ExactScoringUnsupported a custom complete hook raised), refusing
    logprobs, or this case's own error. Told once, where the failure is made."""
    if type(exc).__name__ == ExactScoringUnsupported.__name__:
        return FailureKind.EXACT_UNSUPPORTED
    if is_logprob_refusal(reason):
        return FailureKind.LOGPROB_REFUSED
    return FailureKind.ERROR
