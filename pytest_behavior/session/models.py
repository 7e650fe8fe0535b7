"""Each model of a run resolved once into a frozen setup; its requests are pure functions of it.

:class:`ModelSetup` is what the run knows about a model before its first request is
built: the api_base and checkpoint revision its cache keys carry, the checkpoint
check, its preferred prompt template, the sampling settings, and what ``auto`` and
``logprob`` scoring resolve to there (:class:`~.method_choice.MethodChoice`). Given
the setup, :func:`scoring_method`, :func:`model_requests` and :func:`request_count`
are pure functions of the trait and the case.

:class:`ModelResolver` resolves the setups. The prefetch hands it the requests the
selected items need (:meth:`ModelResolver.resolve`) before the fetch, so each model's
method is decided there, once. Laziness stays where it is the point: a cached rerun
decides the method from the cache without importing litellm, the probe is sent only
when the cache cannot tell, a dry run or a readonly cache sends nothing. Whatever asks
before the prefetch or without it (a shard's plan at collection) resolves a model on
first use, the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from pytest_behavior.session.method_choice import (
    MethodChoice,
    MethodChooser,
    ScoringMethod,
    as_method,
)
from pytest_behavior.settings import BehaviorSettings
from pytest_behavior.spec.prompting import build_request, resolve_template, sampling_params
from pytest_behavior.values import LOCAL_PREFIX, SCORING_METHODS, Case, ModelRequest, Trait

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
    # What auto/logprob traits are scored by here; None until decided, and where no
    # trait of the run leaves the method to the endpoint.
    choice: MethodChoice | None = None

    @property
    def renders_chat(self) -> bool:
        """Whether the server renders the model's chat template (fetch/chat_exact.py)."""
        return self.checkpoint is not None and self.checkpoint.description.renders_chat


def scoring_mode(trait: Trait, scoring_option: str | None) -> str:
    """What the trait asks for: the run's --behavior-scoring, else its own ``scoring:``."""
    return scoring_option or trait.scoring


def leaves_method(trait: Trait, setup: ModelSetup, scoring_option: str | None) -> bool:
    """Whether the trait's method is the model's choice (auto, logprob), not fixed by it."""
    if scoring_mode(trait, scoring_option) in SCORING_METHODS:
        return False
    # The server renders the chat template itself: exact, with no probe of raw text.
    return not (trait.prompt_format == "chat" and setup.renders_chat)


def scoring_method(trait: Trait, setup: ModelSetup, scoring_option: str | None) -> ScoringMethod:
    """exact, topk or generate: what the trait asks for, or the model's choice.

    A chat-format prompt is never scored as raw text: exactly where the server renders
    the model's chat template, else on the chat endpoint (``MethodChoice.chat``).
    """
    fixed = as_method(scoring_mode(trait, scoring_option))
    if fixed is not None:
        return fixed
    if trait.prompt_format == "chat" and setup.renders_chat:
        return "exact"
    choice = setup.choice
    if choice is None:
        method = None
    else:
        method = choice.chat if trait.prompt_format == "chat" else choice.method
    if method is None:
        raise LookupError(f"{setup.model}: the scoring method of {trait.name} is not resolved")
    return method


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


def model_requests(
    trait: Trait, case: Case, setup: ModelSetup, scoring_option: str | None
) -> list[ModelRequest]:
    """The case's requests: one, or with ``samples: K`` where exact scoring is not
    available, K generated at the trait's temperature (sampling.py)."""
    method = scoring_method(trait, setup, scoring_option)
    if trait.samples <= 1 or method == "exact":
        return [build_model_request(trait, case, setup, method)]
    from pytest_behavior.verdicts.sampling import DEFAULT_TEMPERATURE

    temperature = DEFAULT_TEMPERATURE if trait.temperature is None else trait.temperature
    first = build_model_request(trait, case, setup, "generate", temperature=temperature)
    return [replace(first, sample_index=index) for index in range(trait.samples)]


def request_count(trait: Trait, setup: ModelSetup, scoring_option: str | None) -> int:
    """How many requests :func:`model_requests` makes per case, without building them."""
    sampled = trait.samples > 1 and scoring_method(trait, setup, scoring_option) != "exact"
    return trait.samples if sampled else 1


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
        self._endpoint = endpoint
        self._prompt_template = prompt_template
        self._say = say  # a checkpoint's note, where this process may print
        self._setups: dict[str, ModelSetup] = {}
        # Per model, what litellm knows its provider serves (capabilities.py).
        self.known: dict[str, Capabilities] = {}
        # Per model, its checkpoint as checked this run (checkpoint_check.py).
        self.checkpoints: dict[str, CheckpointCheck] = {}
        self._chooser = MethodChooser(
            cache=cache,
            fetcher=fetcher,
            capabilities=self.capabilities,
            record_key=self._method_key,
        )

    @property
    def cache(self) -> AnswerCache:
        return self._cache()

    @property
    def asks(self) -> bool:
        """Whether this run sends requests at all (not a dry run, not readonly)."""
        return not self.settings.dry_run and self.cache.mode != "readonly"

    # -- the frozen setup ----------------------------------------------------

    def setup(self, model: str) -> ModelSetup:
        """``model``'s setup as resolved so far (its checkpoint checked on first use)."""
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

    def choices(self) -> dict[str, MethodChoice]:
        """The models whose method was decided, with their choice, in the order resolved."""
        return {model: s.choice for model, s in self._setups.items() if s.choice is not None}

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

        setup = self.setup(model)
        return method_key(model, setup.api_base, setup.revision)

    # -- the scoring method, decided once per model ---------------------------

    def resolve(
        self,
        needed: Iterable[tuple[Trait, Case, str]],
        *,
        counts: FetchCounts | None = None,
        provisional: bool = False,
    ) -> Mapping[str, ModelSetup]:
        """Each model's method, decided before its requests are built, and the setups.

        A model whose traits leave the method to it is probed with the first such
        case's own request: the probe must be a request the run needs (it costs nothing
        extra when it is served, and is cached like any other), so it takes a case.
        ``provisional`` (a plan): decided from the cache alone, and kept only when
        this run asks nothing anyway (a real run still probes what the plan guessed).
        """
        asks = self.asks and not provisional
        setups: dict[str, ModelSetup] = {}
        last: tuple[Trait, str] | None = None
        for trait, case, model in needed:
            if last is not None and last[0] is trait and last[1] == model:
                continue  # the next case of the same trait: nothing more to learn
            last = (trait, model)
            if scoring_mode(trait, self.settings.scoring) in SCORING_METHODS:
                continue  # fixed by the trait: not even the checkpoint is needed yet
            setup = setups.get(model) or self.setup(model)
            if not leaves_method(trait, setup, self.settings.scoring):
                continue
            if setup.choice is None:
                setup = self._decided(setup, trait, case, asks=asks, counts=counts)
            if trait.prompt_format == "chat" and setup.choice and setup.choice.chat is None:
                setup = self._with_chat(setup)
            setups[model] = setup
        if asks or not self.asks:
            self._setups.update(setups)
        return {model: setups.get(model) or self.setup(model) for model in self.settings.models}

    def _decided(
        self, setup: ModelSetup, trait: Trait, case: Case, *, asks: bool, counts: FetchCounts | None
    ) -> ModelSetup:
        # The probe is sent as an unset format sends it, so traits of every format
        # share one probe (prompt_format.py).
        unset = replace(trait, prompt_format=None)
        method, guessed = self._chooser.decide(
            setup.model,
            lambda method: build_model_request(unset, case, setup, method),
            asks=asks,
            counts=counts,
        )
        # Where the model is not scored exactly, chat prompts take the same method.
        choice = MethodChoice(method, chat=None if method == "exact" else method, guessed=guessed)
        return replace(setup, choice=self._with_reason(setup.model, choice))

    def _with_chat(self, setup: ModelSetup) -> ModelSetup:
        """The setup with what its chat-format traits take where it scores exactly:
        top-k on the chat endpoint, or generate where the provider has no top-k."""
        assert setup.choice is not None
        # Only a chat prompt on an exact endpoint needs litellm's tables.
        after_exact = self.capabilities(setup.model).after_exact()
        choice = replace(setup.choice, chat="topk" if after_exact == "topk" else "generate")
        return replace(setup, choice=self._with_reason(setup.model, choice))

    def _with_reason(self, model: str, choice: MethodChoice) -> MethodChoice:
        """What litellm told, where it was asked while deciding (the run's header says it)."""
        known = self.known.get(model)
        return choice if known is None else replace(choice, reason=known.reason)

    def _resolved(self, trait: Trait, model: str, case: Case | None = None) -> ModelSetup:
        """``model``'s setup, with what ``trait`` needs of it resolved (the prefetch
        resolved it already, unless this comes before or without the prefetch)."""
        setup = self._setups.get(model) or self.setup(model)
        choice = setup.choice
        if choice is not None and (choice.chat is not None or trait.prompt_format != "chat"):
            return setup  # what every request of an item meets: the prefetch resolved it
        if not leaves_method(trait, setup, self.settings.scoring):
            return setup
        self.resolve([(trait, case if case is not None else trait.cases[0], model)])
        return self._setups[model]

    # -- requests ------------------------------------------------------------

    def scoring_mode(self, trait: Trait) -> str:
        return scoring_mode(trait, self.settings.scoring)

    def scoring_method(self, trait: Trait, model: str, case: Case | None = None) -> ScoringMethod:
        """The trait's method on ``model``; ``case`` probes if the model is not resolved yet."""
        fixed = as_method(self.scoring_mode(trait))
        if fixed is not None:
            return fixed  # the trait's own: nothing about the model is needed
        return scoring_method(trait, self._resolved(trait, model, case), self.settings.scoring)

    def request_for(self, trait: Trait, case: Case, model: str) -> ModelRequest:
        setup = self._resolved(trait, model, case)
        method = scoring_method(trait, setup, self.settings.scoring)
        return build_model_request(trait, case, setup, method)

    def requests_for(self, trait: Trait, case: Case, model: str) -> list[ModelRequest]:
        setup = self._resolved(trait, model, case)
        return model_requests(trait, case, setup, self.settings.scoring)

    def request_count(self, trait: Trait, model: str) -> int:
        return request_count(trait, self._resolved(trait, model), self.settings.scoring)
