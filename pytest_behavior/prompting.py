"""From a case to the exact request sent to the model.

The paper's prompt is ``\\n\\nHuman: {question}\\n\\nAssistant:``; a trait can
override it, and a model can bring its own default (a base model wants plain
text, see the local model). The rendered prompt is sent as one user message.
"""

from __future__ import annotations

from pytest_behavior.model import Case, ModelRequest, Trait

PAPER_TEMPLATE = "\n\nHuman: {question}\n\nAssistant:"


def resolve_template(trait: Trait, model_default: str | None) -> str:
    """The template for a trait and model: the trait's own, the model's, then the paper's."""
    if trait.prompt is not None:
        return trait.prompt
    if model_default is not None:
        return model_default
    return PAPER_TEMPLATE


def render_prompt(template: str, case: Case) -> str:
    # str.replace, not str.format: questions contain braces often enough.
    return template.replace("{question}", case.question)


def sampling_params(
    mode: str, *, max_tokens: int, top_logprobs: int
) -> tuple[tuple[str, object], ...]:
    """Greedy decoding; logprob and auto scoring ask for the top alternatives too."""
    params: list[tuple[str, object]] = [("temperature", 0.0), ("max_tokens", max_tokens)]
    if mode in ("auto", "logprob"):
        params += [("logprobs", True), ("top_logprobs", top_logprobs)]
    return tuple(params)


def build_request(
    case: Case,
    *,
    template: str,
    model: str,
    api_base: str | None,
    params: tuple[tuple[str, object], ...],
) -> ModelRequest:
    return ModelRequest(
        model=model,
        api_base=api_base,
        messages=(("user", render_prompt(template, case)),),
        params=params,
    )
