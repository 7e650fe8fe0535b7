"""What ``scoring: auto`` (and ``logprob``) resolves to on one model, decided once a run.

The first of exact, top-k, generate that the provider may serve (capabilities.py: known
in advance where litellm can tell) and whose first request is not refused. That request
is a case's own, so it costs nothing extra when it works and is cached like any other;
a refusal (EXACT_UNSUPPORTED, LOGPROB_REFUSED) is never cached, so the choice it led
to is recorded beside the answers (:func:`~pytest_behavior.fetch.checkpoint.method_key`)
and a rerun asks nothing. A run that asks nothing (readonly, a dry run's plan) reads
the choice from what the cache holds instead.

:class:`MethodChooser` decides; the models' setups (models.py) hold the
:class:`MethodChoice`, so every request built afterwards is a pure function of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pytest_behavior.errors import FailureKind, RequestFailed
from pytest_behavior.values import Answer, ModelRequest

if TYPE_CHECKING:
    from pytest_behavior.cache.backend import AnswerCache
    from pytest_behavior.fetch.capabilities import Capabilities
    from pytest_behavior.fetch.fetcher import Fetcher
    from pytest_behavior.fetch.progress import FetchCounts

ScoringMethod = Literal["exact", "topk", "generate"]


@dataclass(frozen=True)
class MethodChoice:
    """The method ``auto``/``logprob`` traits are scored by on one model, and why."""

    method: ScoringMethod
    # What a chat-format trait takes there when the server does not render the model's
    # chat template: never raw text, so top-k (or generate) on the chat endpoint where
    # ``method`` is exact. None until a chat-format trait asks (telling needs litellm's
    # tables, most of a cached rerun's time).
    chat: ScoringMethod | None = None
    # What litellm told in advance ("" when it told nothing, or was not asked).
    reason: str = ""
    # Nothing cached told (a plan that asks nothing): the first method possible, which
    # the first request of a real run will confirm or refuse (budget.py says so).
    guessed: bool = False


_METHODS: dict[str, ScoringMethod] = {"exact": "exact", "topk": "topk", "generate": "generate"}


def as_method(name: str) -> ScoringMethod | None:
    """``name`` as a scoring method (exact, topk, generate); None for a mode (auto, logprob)."""
    return _METHODS.get(name)


# The probe: its case's request to the model decided, scored by the method named.
Probe = Callable[[str], ModelRequest]


class MethodChooser:
    """Decides models' scoring methods; asks the run only through the callables it is given."""

    def __init__(
        self,
        *,
        cache: Callable[[], AnswerCache],
        fetcher: Callable[[], Fetcher],
        capabilities: Callable[[str], Capabilities],
        record_key: Callable[[str], str],
    ) -> None:
        self._cache = cache
        self._fetcher = fetcher
        self._capabilities = capabilities
        self._record_key = record_key

    def decide(
        self, model: str, probe: Probe, *, asks: bool, counts: FetchCounts | None
    ) -> tuple[ScoringMethod, bool]:
        """``model``'s method, and whether it is a guess (nothing cached told, nothing asked)."""
        recorded = self.recorded(model)
        if recorded is not None:
            return recorded, False
        if not asks:
            return self.from_cache(model, probe)
        method = self._probe(model, probe, counts)
        if method != "exact" and self._capabilities(model).prompt_logprobs is not False:
            # The endpoint refused a method it was asked for: refusals are never cached,
            # so the choice is, with the checkpoint, and a rerun asks nothing.
            self._record(model, method)
        return method, False

    def recorded(self, model: str) -> ScoringMethod | None:
        """The method an earlier run's probe chose for this checkpoint, if it recorded one.

        Only a refusal's choice is recorded: an exact probe's answer is cached like any
        other, so asking it again costs nothing, but an endpoint that cannot score exactly
        fails the probe, and failures are never cached.
        """
        from pytest_behavior.fetch.checkpoint import METHOD_MARK

        answer = self._cache().get(self._record_key(model))
        if answer is None or answer.finish_reason != METHOD_MARK:
            return None
        return as_method(answer.text)

    def _record(self, model: str, method: str) -> None:
        from pytest_behavior.fetch.checkpoint import METHOD_MARK

        key = self._record_key(model)
        self._cache().set_many(
            [(key, Answer(text=method, finish_reason=METHOD_MARK))],
            origins={key: {"model": model, "record": "scoring-method"}},
        )

    def from_cache(self, model: str, probe: Probe) -> tuple[ScoringMethod, bool]:
        """The method a cached probe chose, without asking; the first possible when nothing says."""
        from pytest_behavior.cache.keys import request_key

        cache, failures = self._cache(), self._fetcher().failures
        capabilities = self._capabilities(model)
        if capabilities.prompt_logprobs is not False:
            exact = request_key(probe("exact"))
            answer = cache.get(exact)
            if answer is not None and answer.choice_logprobs is not None:
                return "exact", False
            failure = failures.get(exact)
            refused = failure is not None and failure.kind is FailureKind.EXACT_UNSUPPORTED
            if answer is None and not refused and not self._passed_over(probe):
                return "exact", True
        if capabilities.top_logprobs is False:
            return "generate", False
        topk = request_key(probe("topk"))
        failure = failures.get(topk)
        refused = failure is not None and failure.kind is FailureKind.LOGPROB_REFUSED
        if topk not in cache and refused:
            return "generate", False
        generated = request_key(probe("generate"))
        return ("generate" if topk not in cache and generated in cache else "topk"), False

    def _passed_over(self, probe: Probe) -> bool:
        """Whether a top-k or generated answer is cached: exact was passed over before."""
        from pytest_behavior.cache.keys import request_key

        cache = self._cache()
        return any(request_key(probe(method)) in cache for method in ("topk", "generate"))

    def _probe(self, model: str, probe: Probe, counts: FetchCounts | None) -> ScoringMethod:
        """The first method the provider may serve and whose first request is not refused."""
        # A cached answer with prompt log-probabilities is the endpoint's own word that
        # it serves exact scoring: a cached rerun needs neither a request nor litellm's
        # tables (importing litellm is most of a 2,000-case cached rerun's time).
        from pytest_behavior.cache.keys import request_key

        cached = self._cache().get(request_key(probe("exact")))
        if cached is not None and cached.choice_logprobs:
            return "exact"
        capabilities = self._capabilities(model)
        if capabilities.prompt_logprobs is not False and self._serves(probe, "exact", counts):
            return "exact"
        if capabilities.top_logprobs is not False and self._serves(probe, "topk", counts):
            return "topk"
        return "generate"

    def _serves(self, probe: Probe, method: str, counts: FetchCounts | None) -> bool:
        """Whether the endpoint serves ``method``: the case's request asks, and is kept."""
        request = probe(method)
        fetcher = self._fetcher()
        sent = fetcher.fetch([request]) if counts is not None else None
        result = fetcher.answer(request)
        exact = method == "exact"
        served = not exact or not isinstance(result, Answer) or bool(result.choice_logprobs)
        if isinstance(result, RequestFailed):
            # Any other failure is the endpoint's, not the method's: the cases say it.
            refusal = FailureKind.EXACT_UNSUPPORTED if exact else FailureKind.LOGPROB_REFUSED
            served = result.kind is not refusal
        if counts is not None and sent is not None and sent.sent:
            for name in ("sent", "answered", "failed", "retried", "rate_limited"):
                setattr(counts, name, getattr(counts, name) + getattr(sent, name))
            if served:
                counts.skipped -= sent.sent  # the prefetch will meet it again as cached
            else:
                # A refusal answers which methods the endpoint serves: not an error of the run.
                counts.answered += sent.failed
                counts.failed -= sent.failed
        return served
