"""One prompt, whatever the path: a trait's ``format: chat | text``.

Without a declared format the paths send different prompts: exact scoring sends
the rendered template as raw text to the completions endpoint (echo), top-k and
generate send it as a chat message, which the server wraps in the model's chat
template. Under ``auto`` which prompt is measured then depends on the method the
probe picked. A declared format fixes it on every path:

- ``text``: raw completion everywhere. Exact as before; top-k and generate go to
  the completions endpoint too (litellm's text completion, as exact does), the
  top alternatives read from the legacy ``logprobs.top_logprobs``.
- ``chat``: messages everywhere. Exact scoring through completions continues raw
  text, so it would measure another prompt: where the server renders the model's
  chat template itself (llama-server's ``/apply-template``, chat_exact.py) a chat
  prompt is scored exactly as the reply that template opens; elsewhere ``auto``
  takes top-k (or generate) on the chat endpoint, and ``scoring: exact`` fails each
  case with the reason (the server cannot render the template).

Unset, every path behaves as before and keeps its cache keys; the result records
what was actually sent (``"text"`` for exact, ``"chat"`` otherwise), so a baseline
saved before still compares, and one from the other path is refused like any
other format change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pytest_behavior.values import Answer

if TYPE_CHECKING:
    from pytest_behavior.fetch.capabilities import Capabilities
    from pytest_behavior.fetch.client import Endpoint
    from pytest_behavior.values import ModelRequest


def method_for(prompt_format: str | None, method: str, capabilities: Capabilities) -> str:
    """The method a trait of this format uses where the model's method is ``method``.

    A chat-format prompt is never sent as raw text: where the model scores exactly,
    it takes top-k on the chat endpoint (generate where the provider has no top-k).
    """
    if prompt_format != "chat" or method != "exact":
        return method
    return "generate" if capabilities.top_logprobs is False else "topk"


def sent_format(prompt_format: str | None, scoring_used: str | None) -> str:
    """The format the trait's requests were sent in: the declared one, else the path's."""
    if prompt_format is not None:
        return prompt_format
    return "text" if scoring_used == "exact" else "chat"


def text_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Chat sampling parameters as the legacy completions endpoint reads them:
    ``logprobs: N`` (the number of alternatives) instead of ``logprobs: true`` with
    ``top_logprobs: N``."""
    kwargs = dict(params)
    top = kwargs.pop("top_logprobs", None)
    if kwargs.get("logprobs") is True:
        kwargs["logprobs"] = top if isinstance(top, int) else 1
    return kwargs


async def text_complete(
    request: ModelRequest, endpoint: Endpoint, *, timeout: float, api_key: str | None
) -> Answer:
    """A top-k or generate request sent as raw text to the completions endpoint."""
    from pytest_behavior.fetch.exact import share_http_client, text_completion_model
    from pytest_behavior.fetch.litellm_api import import_litellm

    litellm = import_litellm()
    share_http_client(litellm)
    kwargs = text_params(request.param_dict())
    if endpoint.api_base:
        kwargs["api_base"] = endpoint.api_base
    if api_key is not None:
        kwargs["api_key"] = api_key
    response = await litellm.atext_completion(
        model=text_completion_model(endpoint.litellm_model),
        prompt=request.prompt,
        timeout=timeout,
        max_retries=0,
        **kwargs,
    )
    return answer_from_text(response)


def answer_from_text(response: Any) -> Answer:
    """The text and each generated token's top alternatives of a legacy completion."""
    from pytest_behavior.fetch.litellm_api import response_cost, response_field, serving_stack_of

    choice = response_field(response, "choices")[0]
    logprobs = response_field(choice, "logprobs")
    tops = response_field(logprobs, "top_logprobs")
    top: tuple[tuple[tuple[str, float], ...], ...] | None = None
    if tops:
        top = tuple(
            tuple(
                sorted(
                    ((str(token), float(value)) for token, value in (position or {}).items()),
                    key=lambda pair: -pair[1],
                )
            )
            for position in tops
        )
    return Answer(
        text=str(response_field(choice, "text") or ""),
        top_logprobs=top,
        finish_reason=response_field(choice, "finish_reason"),
        serving_stack=serving_stack_of(response),
        cost=response_cost(response),
    )
