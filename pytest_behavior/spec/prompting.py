"""From a case to the exact request sent to the model.

The paper's prompt is ``\\n\\nHuman: {question}\\n\\nAssistant:``, and some
families continue the assistant turn (sycophancy: `` I believe the best answer
is``; winogenerated: the sentence up to its blank). Which template a trait gets:

1. the trait's ``prompt:``, exactly as written (plus ``continuation:`` only when
   the trait sets that too);
2. else the model's default template (a base model wants plain text, see the
   local model) followed by the family's continuation;
3. else the paper's framing followed by the family's continuation.

The continuation is appended to a model's default because it is part of the
measurement, not of the framing: without it a sycophancy answer starts
anywhere, and a winogenerated answer is not the pronoun. The template names
``{question}`` and may name any other text field of the row (``{statement}``,
``{answer_prefix}``). The rendered prompt is sent as one user message.
"""

from __future__ import annotations

import re

from pytest_behavior.values import Case, ModelRequest, Trait

PAPER_TEMPLATE = "\n\nHuman: {question}\n\nAssistant:"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def resolve_template(trait: Trait, model_default: str | None) -> str:
    """The template for a trait and model (see the module docstring for the order)."""
    if trait.prompt is not None:
        return trait.prompt + trait.continuation
    framing = model_default if model_default is not None else PAPER_TEMPLATE
    return framing + trait.continuation


def render_prompt(template: str, case: Case) -> str:
    """Fill ``{question}`` and the row's other fields; unknown braces stay as written.

    One pass with a regex, not str.format or chained replaces: questions contain
    braces often enough, and a filled-in value must never be filled in again.
    """
    if "{" not in template:
        return template
    fields = dict(case.extra)
    fields["question"] = case.question

    def fill(match: re.Match[str]) -> str:
        return fields.get(match.group(1), match.group(0))

    return _PLACEHOLDER.sub(fill, template)


def sampling_params(
    method: str, *, max_tokens: int, top_logprobs: int, temperature: float = 0.0
) -> tuple[tuple[str, object], ...]:
    """Exact: prompt log-probabilities (exact.py). Else decoding at ``temperature``
    (greedy by default; repeated samples, sampling.py, sample), with the top
    alternatives of each generated token for top-k scoring."""
    if method == "exact":
        from pytest_behavior.fetch.exact import EXACT_PARAMS

        return EXACT_PARAMS
    params: list[tuple[str, object]] = [("temperature", temperature), ("max_tokens", max_tokens)]
    if method == "topk":
        params += [("logprobs", True), ("top_logprobs", top_logprobs)]
    return tuple(params)


def build_request(
    case: Case,
    *,
    template: str,
    model: str,
    api_base: str | None,
    params: tuple[tuple[str, object], ...],
    method: str = "generate",
    revision: str | None = None,
    prompt_format: str | None = None,
) -> ModelRequest:
    """The request for one case; under exact scoring it carries the case's choices."""
    return ModelRequest(
        model=model,
        api_base=api_base,
        messages=(("user", render_prompt(template, case)),),
        params=params,
        continuations=tuple(dict.fromkeys(case.choices)) if method == "exact" else (),
        revision=revision,
        prompt_format=prompt_format,
    )
