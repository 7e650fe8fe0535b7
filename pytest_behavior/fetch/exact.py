"""Exact choice scoring over OpenAI-compatible completion endpoints, through litellm.

A case's request asks for a ``prompt`` list, the rendered prompt followed by each
labelled answer, sent with ``echo=True``, ``logprobs=1`` and ``max_tokens=1`` to
the legacy ``/v1/completions`` endpoint (litellm's text-completion path), as
lm-evaluation-harness's ``gguf`` and ``local-completions`` models do against
vLLM and llama.cpp servers. Cases waiting at the same moment for the same endpoint
share one such request, their prompt lists concatenated (exact_batch.py); each
case is read from its own choices, so its numbers are those of a request alone.
Each returned choice lists the prompt's tokens with their log-probabilities and
character offsets; the answer's log-probability is the sum over the tokens that
start at or after the end of the prompt and before the end of the answer (the
harness's rule: a token that straddles the boundary belongs to the prompt). The
generated token is never counted.

An endpoint that cannot do this (a chat-only API: 404 or 400 on the request, or
an answer without prompt log-probabilities) raises
:class:`ExactScoringUnsupported`, which is permanent, so ``scoring: logprob``
can fall back to top-k and ``scoring: exact`` fails with a clear reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pytest_behavior.fetch.litellm_api import response_field, serving_stack_of
from pytest_behavior.values import Answer, ChoiceLogprob, ModelRequest

if TYPE_CHECKING:
    from pytest_behavior.fetch.client import Endpoint

UNSUPPORTED = "exact scoring unsupported"
# litellm providers that are OpenAI-compatible servers: their legacy completions
# endpoint is reached as text-completion-openai/<name> at the same api_base.
OPENAI_COMPATIBLE = frozenset(
    {"openai", "hosted_vllm", "custom_openai", "text-completion-openai", "llamafile", "lm_studio"}
)
_UNSUPPORTED_STATUSES = frozenset({400, 404, 405, 422, 501})
_UNSUPPORTED_NAMES = frozenset(
    {"BadRequestError", "NotFoundError", "UnprocessableEntityError", "UnsupportedParamsError"}
)

EXACT_PARAMS: tuple[tuple[str, object], ...] = (
    ("echo", True),
    ("logprobs", 1),
    # One generated token, as the harness asks: some servers refuse max_tokens=0.
    ("max_tokens", 1),
    ("temperature", 0.0),
)


class ExactScoringUnsupported(Exception):
    """The endpoint cannot return prompt log-probabilities; ``str()`` says why."""

    status_code = None  # never transient: retrying would get the same answer


def text_completion_model(litellm_model: str) -> str:
    """The litellm name that reaches the legacy completions endpoint of the same server."""
    provider, _, name = litellm_model.partition("/")
    if name and provider in OPENAI_COMPATIBLE:
        return f"text-completion-openai/{name}"
    return litellm_model


def is_unsupported_error(exc: BaseException) -> bool:
    status = getattr(exc, "status_code", None)
    return type(exc).__name__ in _UNSUPPORTED_NAMES or status in _UNSUPPORTED_STATUSES


async def exact_complete(
    request: ModelRequest, endpoint: Endpoint, *, timeout: float, api_key: str | None
) -> Answer:
    """Send one case's exact-scoring request alone and read each continuation's log-probability."""
    prompt = request.prompt
    response = await echo_completion(
        [prompt + continuation for continuation in request.continuations],
        request.params,
        endpoint,
        timeout=timeout,
        api_key=api_key,
    )
    return answer_from_echo(response, prompt, request.continuations)


async def echo_completion(
    prompts: Sequence[str],
    params: Sequence[tuple[str, Any]],
    endpoint: Endpoint,
    *,
    timeout: float,
    api_key: str | None,
) -> Any:
    """One echoed completions request for ``prompts``; a refusal raised as unsupported."""
    from pytest_behavior.fetch.litellm_api import import_litellm
    from pytest_behavior.fetch.retrying import short_reason

    litellm = import_litellm()
    share_http_client(litellm)
    kwargs: dict[str, Any] = dict(params)
    if endpoint.api_base:
        kwargs["api_base"] = endpoint.api_base
    if api_key is not None:
        kwargs["api_key"] = api_key
    try:
        return await litellm.atext_completion(
            model=text_completion_model(endpoint.litellm_model),
            prompt=list(prompts),
            timeout=timeout,
            max_retries=0,
            **kwargs,
        )
    except Exception as exc:
        if is_unsupported_error(exc):
            raise ExactScoringUnsupported(f"{UNSUPPORTED}: {short_reason(exc)}") from exc
        raise


OWNED_MARK = "pytest_behavior_owned"


def share_http_client(litellm: Any) -> None:
    """Give litellm one HTTP client for the session (closed with it, see client.py).

    Without one, litellm's text-completion path builds a new client, and a new
    connection, for every request and never closes them. The one it gets is the
    client litellm builds for its chat requests (its aiohttp transport, unless the
    user turned that off, with their proxy and SSL settings): a plain httpx client
    cost a third more CPU per exact request, most of it httpx's connection pool
    walking its connections (benchmarks/exact_cpu.py).
    """
    if litellm.aclient_session is None:
        # litellm's own factory for OpenAI-compatible providers: it only builds a new
        # client while no session client is set, as here.
        from litellm.llms.openai.common_utils import BaseOpenAILLM

        client = BaseOpenAILLM.get_async_http_client()
        if client is None:  # not in this litellm; a plain client still shares connections
            import httpx

            client = httpx.AsyncClient(follow_redirects=True, timeout=None)
        setattr(client, OWNED_MARK, True)
        litellm.aclient_session = client


def answer_from_echo(response: Any, prompt: str, continuations: Sequence[str]) -> Answer:
    """Sum each continuation's token log-probabilities out of an echoed completion."""
    choices = sorted_choices(response)
    if len(choices) != len(continuations):
        raise ExactScoringUnsupported(choice_count_reason(len(choices), len(continuations)))
    return answer_from_choices(choices, prompt, continuations, serving_stack_of(response))


def sorted_choices(response: Any) -> list[Any]:
    """The response's choices in prompt order (servers may answer them out of order)."""
    return sorted(
        getattr(response, "choices", None) or [], key=lambda c: response_field(c, "index")
    )


def choice_count_reason(choices: int, prompts: int) -> str:
    return f"{UNSUPPORTED}: the endpoint answered {choices} choices for {prompts} prompts"


def answer_from_choices(
    choices: Sequence[Any],
    prompt: str,
    continuations: Sequence[str],
    serving_stack: str | None,
) -> Answer:
    """One case's answer from its own choices, one per continuation, in order."""
    scored = []
    for choice, continuation in zip(choices, continuations, strict=True):
        logprobs = response_field(choice, "logprobs")
        offsets = response_field(logprobs, "text_offset")
        values = response_field(logprobs, "token_logprobs")
        if not offsets or not values or len(offsets) != len(values):
            raise ExactScoringUnsupported(
                f"{UNSUPPORTED}: the endpoint returned no prompt log-probabilities (echo)"
            )
        start, end = len(prompt), len(prompt) + len(continuation)
        picked = [
            value for offset, value in zip(offsets, values, strict=True) if start <= offset < end
        ]
        if not picked or any(value is None for value in picked):
            raise ExactScoringUnsupported(
                f"{UNSUPPORTED}: no log-probability for the tokens of {continuation!r}"
            )
        scored.append(ChoiceLogprob(continuation, float(sum(picked)), len(picked)))
    return Answer(
        text="",
        choice_logprobs=tuple(scored),
        finish_reason="echo",
        serving_stack=serving_stack,
    )
