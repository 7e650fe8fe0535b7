"""What a run would send before it sends anything: the dry run, request and cost budgets.

The plan walks the same requests the prefetch would (one per selected case,
deduplicated by cache key) and looks each up in the cache. Under ``auto`` and
``logprob`` scoring the method is the one the endpoint's cached answer to the
first exact request chose; when that answer is not cached yet, the plan counts
exact requests and says the first request decides.

Costs are estimates from litellm's local price map: prompt tokens as characters
/ 4, plus the tokens the request may generate (``max_tokens``). A model litellm
has no price for has no estimate; the budget then counts only priced models,
and the message says which were not priced.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pytest_behavior.cache.backend import AnswerCache
from pytest_behavior.cache.keys import request_key
from pytest_behavior.values import ModelRequest

CHARS_PER_TOKEN = 4


@dataclass
class PlanRow:
    """One model and trait: requests needed, how many are cached, estimated cost."""

    model: str
    trait: str
    requests: int = 0
    cached: int = 0
    cost: float | None = 0.0

    @property
    def to_send(self) -> int:
        return self.requests - self.cached


@dataclass
class RunPlan:
    rows: dict[tuple[str, str], PlanRow] = field(default_factory=dict)
    # Models whose scoring method their first (uncached) request will decide.
    undecided: set[str] = field(default_factory=set)
    unpriced: set[str] = field(default_factory=set)

    @property
    def requests(self) -> int:
        return sum(row.requests for row in self.rows.values())

    @property
    def cached(self) -> int:
        return sum(row.cached for row in self.rows.values())

    @property
    def to_send(self) -> int:
        return self.requests - self.cached

    @property
    def cost(self) -> float:
        return sum(row.cost or 0.0 for row in self.rows.values())


def plan_requests(
    needed: Iterable[tuple[str, ModelRequest]],
    cache: AnswerCache,
    *,
    price: Callable[[str], tuple[float, float] | None] | None = None,
) -> RunPlan:
    """Count ``(trait name, request)`` pairs: distinct keys, cached, estimated cost."""
    plan = RunPlan()
    seen: set[str] = set()
    prices: dict[str, tuple[float, float] | None] = {}
    for trait, request in needed:
        key = request_key(request)
        if key in seen:
            continue
        seen.add(key)
        row = plan.rows.get((request.model, trait))
        if row is None:
            row = plan.rows[(request.model, trait)] = PlanRow(request.model, trait)
        row.requests += 1
        if key in cache:
            row.cached += 1
            continue
        if price is None:
            continue
        if request.model not in prices:
            prices[request.model] = price(request.model)
        rates = prices[request.model]
        if rates is None:
            plan.unpriced.add(request.model)
            row.cost = None
        elif row.cost is not None:
            row.cost += estimated_cost(request, *rates)
    return plan


def estimated_cost(request: ModelRequest, input_rate: float, output_rate: float) -> float:
    """USD for one request from per-token prices: characters / 4 in, max_tokens out."""
    prompt_tokens = math.ceil(len(request.prompt) / CHARS_PER_TOKEN)
    if request.continuations:  # one prompt per answer, each echoed and scored
        prompt_tokens = sum(
            math.ceil(len(request.prompt + continuation) / CHARS_PER_TOKEN)
            for continuation in request.continuations
        )
        outputs = len(request.continuations)
    else:
        outputs = 1
    max_tokens = int(request.param_dict().get("max_tokens", 16))
    return prompt_tokens * input_rate + outputs * max_tokens * output_rate


def litellm_price(litellm_model: str) -> tuple[float, float] | None:
    """Per-token (input, output) USD prices from litellm's local map, if it has them."""
    from pytest_behavior.fetch.litellm_api import import_litellm

    litellm = import_litellm()
    candidates = [litellm_model, litellm_model.partition("/")[2]]
    for name in candidates:
        entry = litellm.model_cost.get(name) if name else None
        if isinstance(entry, dict):
            given = entry.get("input_cost_per_token"), entry.get("output_cost_per_token")
            if all(isinstance(value, int | float) for value in given):
                return float(given[0]), float(given[1])  # type: ignore[arg-type]
    return None


def plan_table(plan: RunPlan) -> list[str]:
    """The dry run's table: per model and trait, requests, cached, to send, estimated cost."""
    from tabulate import tabulate

    priced = any(row.cost for row in plan.rows.values()) or bool(plan.unpriced)
    headers = ["model", "trait", "requests", "cached", "to send"]
    if priced:
        headers.append("est. cost")
    rows = []
    for row in plan.rows.values():
        cells: list[object] = [row.model, row.trait, row.requests, row.cached, row.to_send]
        if priced:
            cells.append("unknown" if row.cost is None else f"${row.cost:.4f}")
        rows.append(cells)
    lines = tabulate(rows, headers=headers, tablefmt="github").splitlines()
    total = f"total: {plan.requests} requests, {plan.cached} cached, {plan.to_send} to send" + (
        f", estimated ${plan.cost:.4f}" if priced else ""
    )
    lines.append(total)
    for model in sorted(plan.undecided):
        lines.append(
            f"{model}: counted as exact-scoring requests; the first request decides "
            "whether the endpoint serves them (else top-k or generate, a refused request each)"
        )
    for model in sorted(plan.unpriced):
        lines.append(f"{model}: litellm has no price for it; its cost is not estimated")
    return lines
