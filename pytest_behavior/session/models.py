"""Each model of a run resolved once: its frozen setup, its scoring method, its requests.

:class:`ModelSetup` is what the run knows about a model before its first request is
built (the api_base and checkpoint revision its cache keys carry, the checkpoint
check, its preferred prompt template, the sampling settings); request building is
then a pure function of (trait, case, setup, method): :func:`build_model_request`.

:class:`ModelResolver` fills the setups and decides each model's scoring method.
Both stay lazy where laziness is the point: a cached rerun decides the method from
the cache without importing litellm, the probe is sent only when the cache cannot
tell, a dry run or a readonly cache sends nothing, and a model's setup is resolved
(its checkpoint checked) the first time one of its requests is built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from pytest_behavior.errors import FailureKind, RequestFailed
from pytest_behavior.settings import BehaviorSettings
from pytest_behavior.spec.prompting import build_request, resolve_template, sampling_params
from pytest_behavior.values import LOCAL_PREFIX, SCORING_METHODS, Answer, Case, ModelRequest, Trait

if TYPE_CHECKING:
    from pytest_behavior.cache.backend import AnswerCache
    from pytest_behavior.fetch.capabilities import Capabilities
    from pytest_behavior.fetch.checkpoint_check import CheckpointCheck
    from pytest_behavior.fetch.client import Endpoint
    from pytest_behavior.fetch.fetcher import Fetcher
    from pytest_behavior.fetch.progress import FetchCounts


@dataclass(frozen=True)
class ModelSetup:
    """One model as this run resolved it, before its requests are built."""

    model: str
    # What its cache keys carry: a local model's port changes every session and its
    # name identifies it, so it has neither an api_base nor a revision there.
    api_base: str | None
    revision: str | None
    # The checkpoint as checked this run (checkpoint_check.py); None without an api_base.
    checkpoint: CheckpointCheck | None
    # The prompt template the model prefers (pytest_behavior_prompt_template), if any.
    template: str | None
    max_tokens: int
    top_logprobs: int

    @property
    def renders_chat(self) -> bool:
        """Whether the server renders the model's chat template (fetch/chat_exact.py)."""
        return self.checkpoint is not None and self.checkpoint.description.renders_chat


def build_model_request(
    trait: Trait, case: Case, setup: ModelSetup, method: str, *, temperature: float = 0.0
) -> ModelRequest:
    """The request for one case of ``trait`` to the model of ``setup``, scored by ``method``."""
    return build_request(
        case,
        template=resolve_template(trait, setup.template),
        model=setup.model,
        api_base=setup.api_base,
        params=sampling_params(
            method,
            max_tokens=setup.max_tokens,
            top_logprobs=setup.top_logprobs,
            temperature=temperature,
        ),
        method=method,
        revision=setup.revision,
        prompt_format=trait.prompt_format,
    )


class ModelResolver:
    """The run's models: their setups, what their providers serve, their scoring methods.

    It asks the run only through the callables it is given (the cache and the fetcher
    are opened when first needed), so it depends on no session object.
    """

    def __init__(
        self,
        settings: BehaviorSettings,
        *,
        cache: Callable[[], AnswerCache],
        fetcher: Callable[[], Fetcher],
        endpoint: Callable[[str], Endpoint],
        prompt_template: Callable[[str], str | None],
        say: Callable[[str], None],
    ) -> None:
        self.settings = settings
        self._cache = cache
        self._fetcher = fetcher
        self._endpoint = endpoint
        self._prompt_template = prompt_template
        self._say = say  # a checkpoint's note, where this process may print
        self._setups: dict[str, ModelSetup] = {}
        # Per model, the best scoring method its endpoint supports (auto / logprob).
        self.methods: dict[str, str] = {}
        # Per model, what litellm knows its provider serves (capabilities.py).
        self.known: dict[str, Capabilities] = {}
        # Per model, its checkpoint as checked this run (checkpoint_check.py).
        self.checkpoints: dict[str, CheckpointCheck] = {}
        # Models whose method a plan could not decide from the cache (budget.py).
        self.undecided: set[str] = set()

    @property
    def cache(self) -> AnswerCache:
        return self._cache()

    @property
    def asks(self) -> bool:
        """Whether this run sends requests at all (not a dry run, not readonly)."""
        return not self.settings.dry_run and self.cache.mode != "readonly"

    # -- the frozen setup ----------------------------------------------------

    def setup(self, model: str) -> ModelSetup:
        """``model``'s setup, resolved (its checkpoint checked) on first use."""
        if model not in self._setups:
            local = model.startswith(LOCAL_PREFIX)
            template = self._prompt_template(model)
            check = self.checkpoint(model)
            self._setups[model] = ModelSetup(
                model=model,
                api_base=None if local else self.settings.api_base,
                revision=None if local or check is None else check.revision,
                checkpoint=check,
                template=template,
                max_tokens=self.settings.max_tokens,
                top_logprobs=self.settings.top_logprobs,
            )
        return self._setups[model]

    def template_for(self, trait: Trait, model: str) -> str:
        return resolve_template(trait, self.setup(model).template)

    def served_revision(self, model: str) -> str | None:
        """What the endpoint says about the model it serves (vLLM's root, llama.cpp's
        listing and /props), once a run; without the fingerprint, so shards asked on
        different machines agree."""
        check = self.checkpoint(model)
        return None if check is None else check.description.revision

    def checkpoint(self, model: str) -> CheckpointCheck | None:
        """The model's checkpoint, checked once a run where it is served at an api_base."""
        if self.settings.api_base is None or model.startswith(LOCAL_PREFIX):
            return None
        if model not in self.checkpoints:
            from pytest_behavior.fetch.checkpoint_check import check_checkpoint
            from pytest_behavior.fetch.revision import split_revision

            check = check_checkpoint(
                self.cache,
                model,
                split_revision(model).name,
                self.settings.api_base,
                asks=self.asks,
                readonly=self.cache.mode == "readonly",
                timeout=min(30.0, self.settings.request_timeout),
            )
            self.checkpoints[model] = check
            if check.note is not None:
                self._say(check.note)
        return self.checkpoints[model]

    def build(
        self, trait: Trait, case: Case, model: str, method: str, *, temperature: float = 0.0
    ) -> ModelRequest:
        return build_model_request(trait, case, self.setup(model), method, temperature=temperature)

    # -- requests ------------------------------------------------------------

    def scoring_mode(self, trait: Trait) -> str:
        return self.settings.scoring or trait.scoring

    def request_for(self, trait: Trait, case: Case, model: str) -> ModelRequest:
        return self.build(trait, case, model, self.scoring_method(trait, model, case))

    def requests_for(self, trait: Trait, case: Case, model: str) -> list[ModelRequest]:
        """The case's requests: one, or with ``samples: K`` where exact scoring is not
        available, K generated at the trait's temperature (sampling.py)."""
        method = self.scoring_method(trait, model, case)
        if trait.samples <= 1 or method == "exact":
            return [self.build(trait, case, model, method)]
        from pytest_behavior.verdicts.sampling import DEFAULT_TEMPERATURE

        temperature = DEFAULT_TEMPERATURE if trait.temperature is None else trait.temperature
        first = self.build(trait, case, model, "generate", temperature=temperature)
        return [replace(first, sample_index=index) for index in range(trait.samples)]

    def request_count(self, trait: Trait, model: str) -> int:
        method = self.methods.get(model, "")
        if trait.prompt_format == "chat" and method:
            method = self._chat_method(model, method)
        sampled = trait.samples > 1 and method != "exact"
        return trait.samples if sampled and self.scoring_mode(trait) != "exact" else 1

    # -- the scoring method --------------------------------------------------

    def scoring_method(
        self,
        trait: Trait,
        model: str,
        case: Case | None = None,
        counts: FetchCounts | None = None,
    ) -> str:
        """exact, topk or generate: what the trait asks for, or the best the endpoint supports.

        ``auto`` and ``logprob`` take the first of exact, top-k, generate that the
        provider may serve (capabilities.py: known in advance where litellm can
        tell) and whose first request is not refused (it is a case's own request,
        so it costs nothing extra when it works and is cached like any other).
        """
        original = trait
        mode = self.scoring_mode(trait)
        if mode in SCORING_METHODS:
            return mode
        if trait.prompt_format == "chat" and self._renders_chat(model):
            return "exact"  # the server's own template: no probe of raw text needed
        if model not in self.methods:
            probe = case if case is not None else trait.cases[0]
            # The model's method is probed with the requests an unset format sends, so
            # traits of every format share one probe (prompt_format.py).
            trait = replace(trait, prompt_format=None)
            recorded = self._recorded_method(model)
            if recorded is not None:
                self.methods[model] = recorded
            elif self.asks:
                self.methods[model] = self._probe_methods(trait, probe, model, counts)
                if (
                    self.methods[model] != "exact"
                    and self.capabilities(model).prompt_logprobs is not False
                ):
                    # The endpoint refused a method it was asked for: refusals are never
                    # cached, so the choice is, with the checkpoint, and a rerun asks nothing.
                    self._record_method(model, self.methods[model])
            else:
                self.methods[model] = self.method_from_cache(trait, probe, model)
        method = self.methods[model]
        return method if original.prompt_format != "chat" else self._chat_method(model, method)

    def _chat_method(self, model: str, method: str) -> str:
        """A chat-format prompt is scored exactly where the server renders the model's
        chat template (fetch/chat_exact.py), else on the chat endpoint: never as raw text."""
        if self._renders_chat(model):
            return "exact"
        if method != "exact":
            # Only a chat prompt on an exact endpoint needs litellm's tables (its import
            # is most of a cached rerun's time).
            return method
        from pytest_behavior.spec.prompt_format import method_for

        return method_for("chat", method, self.capabilities(model))

    def _renders_chat(self, model: str) -> bool:
        check = self.checkpoint(model)
        return check is not None and check.description.renders_chat

    def capabilities(self, model: str) -> Capabilities:
        """What ``model``'s provider serves, as far as litellm knows without asking."""
        if model not in self.known:
            from pytest_behavior.fetch.capabilities import UNKNOWN, provider_capabilities

            # A local model is a llama.cpp server: its endpoint tells (and starts it).
            local = model.startswith(LOCAL_PREFIX)
            self.known[model] = (
                UNKNOWN if local else provider_capabilities(self._endpoint(model).litellm_model)
            )
        return self.known[model]

    def _method_key(self, model: str) -> str:
        from pytest_behavior.fetch.checkpoint import method_key

        local = model.startswith(LOCAL_PREFIX)
        api_base = None if local else self.settings.api_base
        return method_key(model, api_base, None if local else self.setup(model).revision)

    def _recorded_method(self, model: str) -> str | None:
        """The method an earlier run's probe chose for this checkpoint, if it recorded one.

        Only top-k is recorded: an exact probe's answer is cached like any other, so
        asking it again costs nothing, but an endpoint that cannot score exactly fails
        the probe, and failures are never cached.
        """
        from pytest_behavior.fetch.checkpoint import METHOD_MARK

        answer = self.cache.get(self._method_key(model))
        if answer is None or answer.finish_reason != METHOD_MARK:
            return None
        return answer.text if answer.text in SCORING_METHODS else None

    def _record_method(self, model: str, method: str) -> None:
        from pytest_behavior.fetch.checkpoint import METHOD_MARK

        key = self._method_key(model)
        self.cache.set_many(
            [(key, Answer(text=method, finish_reason=METHOD_MARK))],
            origins={key: {"model": model, "record": "scoring-method"}},
        )

    def method_from_cache(self, trait: Trait, case: Case, model: str) -> str:
        """The method a cached probe chose, without asking; the first possible when nothing says."""
        from pytest_behavior.cache.keys import request_key

        recorded = self._recorded_method(model)
        if recorded is not None:
            return recorded
        capabilities = self.capabilities(model)
        if capabilities.prompt_logprobs is not False:
            exact = request_key(self.build(trait, case, model, "exact"))
            answer = self.cache.get(exact)
            if answer is not None and answer.choice_logprobs is not None:
                return "exact"
            failure = self._fetcher().failures.get(exact)
            refused = failure is not None and failure.kind is FailureKind.EXACT_UNSUPPORTED
            if answer is None and not refused and not self._cached_beyond(trait, case, model):
                self.undecided.add(model)
                return "exact"
        if capabilities.top_logprobs is False:
            return "generate"
        topk = request_key(self.build(trait, case, model, "topk"))
        failure = self._fetcher().failures.get(topk)
        refused = failure is not None and failure.kind is FailureKind.LOGPROB_REFUSED
        if topk not in self.cache and refused:
            return "generate"
        generated = request_key(self.build(trait, case, model, "generate"))
        return "generate" if topk not in self.cache and generated in self.cache else "topk"

    def _cached_beyond(self, trait: Trait, case: Case, model: str) -> bool:
        """Whether a top-k or generated answer is cached: exact was passed over before."""
        from pytest_behavior.cache.keys import request_key

        return any(
            request_key(self.build(trait, case, model, method)) in self.cache
            for method in ("topk", "generate")
        )

    def _probe_methods(
        self, trait: Trait, case: Case, model: str, counts: FetchCounts | None
    ) -> str:
        """The first method the provider may serve and whose first request is not refused."""
        # A cached answer with prompt log-probabilities is the endpoint's own word that
        # it serves exact scoring: a cached rerun needs neither a request nor litellm's
        # tables (importing litellm is most of a 2,000-case cached rerun's time).
        from pytest_behavior.cache.keys import request_key

        cached = self.cache.get(request_key(self.build(trait, case, model, "exact")))
        if cached is not None and cached.choice_logprobs:
            return "exact"
        capabilities = self.capabilities(model)
        if capabilities.prompt_logprobs is not False and self._serves(
            trait, case, model, "exact", counts
        ):
            return "exact"
        if capabilities.top_logprobs is not False and self._serves(
            trait, case, model, "topk", counts
        ):
            return "topk"
        return "generate"

    def _serves(
        self, trait: Trait, case: Case, model: str, method: str, counts: FetchCounts | None
    ) -> bool:
        """Whether the endpoint serves ``method``: the case's request asks, and is kept."""
        request = self.build(trait, case, model, method)
        fetcher = self._fetcher()
        probe = fetcher.fetch([request]) if counts is not None else None
        result = fetcher.answer(request)
        served = method != "exact" or not isinstance(result, Answer) or bool(result.choice_logprobs)
        if isinstance(result, RequestFailed):
            # Any other failure is the endpoint's, not the method's: the cases say it.
            refusal = (
                FailureKind.EXACT_UNSUPPORTED if method == "exact" else FailureKind.LOGPROB_REFUSED
            )
            served = result.kind is not refusal
        if counts is not None and probe is not None and probe.sent:
            for name in ("sent", "answered", "failed", "retried", "rate_limited"):
                setattr(counts, name, getattr(counts, name) + getattr(probe, name))
            if served:
                counts.skipped -= probe.sent  # the prefetch will meet it again as cached
            else:
                # A refusal answers which methods the endpoint serves: not an error of the run.
                counts.answered += probe.failed
                counts.failed -= probe.failed
        return served
