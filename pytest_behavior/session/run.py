"""The plugin object of one pytest process: answers, verdicts and the session gate.

Before items run, every request the selected items need is known; the
uncached ones are sent concurrently and land in the cache as they arrive.
Items then read their answers. Under xdist the workers split the requests
(each is sent by the first worker to claim it, see claims.py) and compute
verdicts from the shared cache; the controller gathers the verdicts from the
test reports and renders them.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import replace
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_behavior.errors import FailureKind, RequestFailed
from pytest_behavior.session.item_data import (
    REPORT_ATTRIBUTE,
    CaseData,
    ItemDataReader,
    NotRunData,
    NotRunTrait,
    VerdictData,
)
from pytest_behavior.session.models import ModelResolver, model_requests
from pytest_behavior.session.state import CasesNotRun
from pytest_behavior.settings import DEFAULT_CACHE_DIR, BehaviorSettings
from pytest_behavior.values import (
    LOCAL_PREFIX,
    Answer,
    Case,
    ModelRequest,
    Trait,
)

# The cache, outcomes and results modules (sqlite3, pickle, statistics, the families)
# are imported where used: a run without specs constructs this class and nothing more.
if TYPE_CHECKING:
    from pytest_behavior.cache.backend import AnswerCache
    from pytest_behavior.fetch.budget import RunPlan
    from pytest_behavior.fetch.claims import RequestClaims
    from pytest_behavior.fetch.client import Endpoint, ModelClient
    from pytest_behavior.fetch.fetcher import Fetcher
    from pytest_behavior.fetch.progress import FetchCounts
    from pytest_behavior.outcomes import CaseOutcome, Comparison, TraitResult
    from pytest_behavior.session.collect import Selection
    from pytest_behavior.session.finish import SessionOutcome
    from pytest_behavior.session.preflight import Preflight
    from pytest_behavior.session.read_ahead import PlannedReads
    from pytest_behavior.verdicts.adaptive import AdaptiveTrait, BaselineCases
    from pytest_behavior.verdicts.baseline import TraitNamed

# Case ids listed per reason in the "not run" summary before "... and N more".
NOT_RUN_LISTED = 20
# Where the response cache lived before 0.5 (under .pytest_cache, so --cache-clear
# deleted it); moved to DEFAULT_CACHE_DIR on first use.
_OLD_CACHE_DIR = (".pytest_cache", "d", "behavior", "responses")


class BehaviorRun:
    """Registered as a plugin in pytest_configure, unregistered in pytest_unconfigure."""

    def __init__(self, config: pytest.Config, settings: BehaviorSettings) -> None:
        self.config = config
        self.settings = settings
        self.is_worker = hasattr(config, "workerinput")
        self.results: list[TraitResult] = []
        # Set at session end on the controller (finish.conclude).
        self.outcome: SessionOutcome | None = None
        self._baseline_lookup: Callable[[TraitNamed], tuple[TraitResult, str] | None] | None = None
        self._cache: AnswerCache | None = None
        self._temporary_cache_dir: Path | None = None
        if settings.cache_url is not None and settings.use_cache:
            from pytest_behavior.cache.backend import PLUGIN_NAME, SharedCacheReport

            # On the controller too: under xdist it says what the workers' caches met.
            config.pluginmanager.register(SharedCacheReport(settings.cache_fallback), PLUGIN_NAME)
        self._client: ModelClient | None = None
        self._endpoints: dict[str, Endpoint] = {}
        self._closers: list[Callable[[], None]] = []
        self._fetcher: Fetcher | None = None
        # What the selected items need (collect.Selection); None: no spec was collected.
        self.selection: Selection | None = None
        # Each model's setup and scoring method, resolved once a run (models.py).
        self.models = ModelResolver(
            settings,
            cache=lambda: self.cache,
            fetcher=lambda: self.fetcher,
            endpoint=self.endpoint,
            prompt_template=lambda model: config.hook.pytest_behavior_prompt_template(
                model=model, config=config
            ),
            say=self._say_note,
        )
        self._redactor: Callable[[str], str] | None = None
        # Set by a dry run: what the run would send (printed at the end).
        self.plan: RunPlan | None = None
        # On the controller: (model, reason) -> items not run, and the first ids.
        self.not_run: Counter[tuple[str, str]] = Counter()
        self.not_run_ids: dict[tuple[str, str], list[str]] = {}
        # [notice, trait] pairs from the verdict items: what was asked for and not applied.
        self.notices: list[list[str]] = []
        # The traits whose verdict was not run, for the reports.
        self.not_run_traits: list[NotRunTrait] = []
        # What each behavior item's report carries (a shard's hooks read it here too).
        self.report_data = ItemDataReader()
        # Adaptive traits' looks, by (spec, trait, model): the prefetch's, or replayed.
        self._adaptive: dict[tuple[str, str, str], AdaptiveTrait] = {}
        # Under xdist, on the controller: what the workers paid (from workeroutput).
        self.workers_cost = 0.0
        # Case items' outcomes by (spec, trait, model) and case index, until the
        # verdict reads them; and the groups whose verdict item this process runs.
        self._case_outcomes: dict[tuple[str, str, str], dict[int, CaseOutcome]] = {}
        self._verdict_groups: set[tuple[str, str, str]] | None = None
        # Each case's key as the prefetch derived it, for its item (read_ahead.py).
        self._reads: PlannedReads | None = None
        # Credentials and endpoints are checked once, before the first request is sent.
        self._sending_checked = False
        # A dry run's preflight (printed at the end).
        self.preflight: Preflight | None = None

    # -- cache and client ---------------------------------------------------

    @property
    def cache(self) -> AnswerCache:
        if self._cache is None:
            mode = self.settings.cache_mode if self.settings.use_cache else "readwrite"
            stamp = None
            if mode == "refresh":
                # Answers written in this run carry its id, so every worker tells
                # them from the answers being replaced.
                stamp = str(getattr(self.config, "workerinput", {}).get("testrunuid", "")) or (
                    uuid.uuid4().hex
                )

            from pytest_behavior.cache.backend import shared_cache_report
            from pytest_behavior.cache.disk import ResponseCache

            def local() -> AnswerCache:
                return ResponseCache(self._cache_directory(), mode=mode, stamp=stamp)

            # With --behavior-cache-url: Redis, or (fallback) the local folder, or a stop.
            shared = shared_cache_report(self.config)
            if shared is not None and self.settings.cache_url is not None:
                self._cache = shared.open(self.settings.cache_url, local, mode=mode, stamp=stamp)
            else:
                self._cache = local()
        return self._cache

    @property
    def redact(self) -> Callable[[str], str]:
        """Removes credentials (API-key variables, auth headers) from a message."""
        if self._redactor is None:
            from pytest_behavior.fetch.redaction import Redactor

            self._redactor = Redactor.from_environment()
        return self._redactor

    def _cache_directory(self) -> Path:
        if not self.settings.use_cache:
            shared = getattr(self.config, "workerinput", {}).get("behavior_temporary_cache")
            if shared:
                return Path(shared)
            self._temporary_cache_dir = Path(tempfile.mkdtemp(prefix="pytest-behavior-"))
            return self._temporary_cache_dir
        if self.settings.cache_dir is not None:
            return self.settings.cache_dir
        return default_cache_directory(self.config.rootpath)

    def temporary_cache_for_workers(self) -> str | None:
        """With --behavior-no-cache, workers share one throwaway cache made by the controller."""
        if self.settings.use_cache:
            return None
        return self.cache.location

    @property
    def client(self) -> ModelClient:
        if self._client is None:
            hook = self.config.hook

            def complete(request: ModelRequest, endpoint: Endpoint) -> Any:
                return hook.pytest_behavior_complete(
                    request=request, endpoint=endpoint, config=self.config
                )

            from pytest_behavior.fetch.client import ModelClient

            claims = self.fetcher.claims

            def share_stop(model: str, reason: str) -> None:
                if claims is not None:
                    claims.record_stop(model, reason)

            self._client = ModelClient(
                complete,
                concurrency=self.settings.concurrency,
                model_concurrency=self._serving_slots,
                max_attempts=self.settings.max_attempts,
                request_timeout=self.settings.request_timeout,
                max_duration=self.settings.max_duration,
                redact=self.redact,
                # Under xdist a stop is every worker's, with the first worker's reason.
                on_stop=share_stop if claims is not None else None,
            )
        return self._client

    def _serving_slots(self, model: str) -> int | None:
        """Requests the model's server answers at once: a local model's one, llama-server's
        ``total_slots``; None where the server does not say (no limit of its own)."""
        from pytest_behavior.local.model import serving_slots

        local = serving_slots(model)
        if local is not None:
            return local
        check = self.models.checkpoints.get(model)
        return None if check is None else check.description.slots

    def endpoint(self, model: str) -> Endpoint:
        """Where ``model`` is served; resolved (a local model started) only when needed."""
        if model not in self._endpoints:
            try:
                self._endpoints[model] = self.config.hook.pytest_behavior_endpoint(
                    model=model, config=self.config
                )
            except Exception as error:  # a server that cannot start: say so, no traceback
                from pytest_behavior.errors import RunRefused

                raise RunRefused(self.redact(f"cannot reach {model}: {error}")) from None
        return self._endpoints[model]

    def add_closer(self, closer: Callable[[], None]) -> None:
        """Run ``closer`` when the session ends (local model servers register here)."""
        self._closers.append(closer)

    # -- models (models.py) ---------------------------------------------------

    def _say_note(self, note: str) -> None:
        """A checkpoint's note, printed by the process that prints (not a worker)."""
        if self.is_worker:
            return
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:
            terminal.write_line(note, yellow=True)

    @property
    def asks(self) -> bool:
        """Whether this run sends requests at all (not a dry run, not readonly)."""
        return self.models.asks

    def _score_mode(self, trait: Trait, model: str, case: Case) -> str:
        """What the scorer is told: the method, but ``auto`` stays auto on top-k
        endpoints, so answers that carried no logprobs are not counted as fallbacks."""
        method = self.models.scoring_method(trait, model, case)
        return "auto" if method == "topk" and self.models.scoring_mode(trait) == "auto" else method

    @property
    def fetcher(self) -> Fetcher:
        if self._fetcher is None:
            from pytest_behavior.fetch.fetcher import Fetcher

            self._fetcher = Fetcher(
                self.cache,
                client=lambda: self.client,
                endpoint=self.endpoint,
                claims=self._worker_claims(),
                before_first_send=self.before_first_send,
                refuse=(
                    "not in the cache, and --behavior-cache-mode=readonly asks nothing"
                    if self.cache.mode == "readonly"
                    else None
                ),
            )
        return self._fetcher

    def _worker_claims(self) -> RequestClaims | None:
        """Under xdist, the claims (a sqlite file per run) that split the requests."""
        testrunuid = getattr(self.config, "workerinput", {}).get("testrunuid")
        if testrunuid is None:
            return None
        from pytest_behavior.fetch.claims import RequestClaims, claims_path

        return RequestClaims(claims_path(str(testrunuid)))

    def answer(self, request: ModelRequest) -> Answer | RequestFailed:
        return self.fetcher.answer(request)

    def _outcome(
        self, trait: Trait, case: Case, request: ModelRequest, mode: str | None = None
    ) -> CaseOutcome:
        from pytest_behavior.verdicts.results import case_outcome

        result = self.answer(request)
        if isinstance(result, RequestFailed):
            stopped = self.stop_reason(request.model)
            if stopped is not None:
                # Failed before or as its model was stopped: one of the stop's cases, with
                # the one reason every process gives.
                return case_outcome(case, None, None, stopped, not_run=True)
            if result.kind is FailureKind.NOT_RUN:
                return case_outcome(case, None, None, result.why, not_run=True)
            return case_outcome(case, None, None, result.reason)
        return self._scored(trait, case, request.model, result, mode)

    def _scored(
        self, trait: Trait, case: Case, model: str, answer: Answer, mode: str | None = None
    ) -> CaseOutcome:
        from pytest_behavior.verdicts.results import case_outcome

        score = self.config.hook.pytest_behavior_score(
            answer=answer,
            case=case,
            trait=trait,
            mode=mode or self._score_mode(trait, model, case),
            config=self.config,
        )
        return case_outcome(case, self._with_stack(answer, model), score, None)

    def stop_reason(self, model: str) -> str | None:
        """Why ``model`` is no longer asked: the first xdist worker's reason, else this
        process's (see stopping.py), else None."""
        claims = self._fetcher.claims if self._fetcher is not None else None
        shared = claims.stop_of(model) if claims is not None else None
        if shared is not None:
            return shared
        return self._client.stops.stopped(model) if self._client is not None else None

    # -- what items call ---------------------------------------------------

    def _with_stack(self, answer: Answer, model: str) -> Answer:
        """The answer with the serving stack its endpoint names apart from its responses
        (vLLM's /version), where the response itself named none."""
        if answer.serving_stack is not None:
            return answer
        check = self.models.checkpoints.get(model)
        server = None if check is None else check.stack.server
        return answer if server is None else replace(answer, serving_stack=server)

    def case_outcome(self, trait: Trait, case: Case, model: str) -> CaseOutcome:
        """A case item's outcome, kept until its trait's verdict item reads it."""
        outcome = self._case_outcome(trait, case, model)
        kept = self._kept_outcomes(trait, model)
        if kept is not None:
            kept[case.index] = outcome
        return outcome

    def _kept_outcomes(self, trait: Trait, model: str) -> dict[int, CaseOutcome] | None:
        """Where a case item leaves its outcome for the verdict (which then neither reads
        nor scores the case again): only when that verdict runs in this process, so
        nothing is held for a verdict that never comes (deselected, or on another
        xdist worker)."""
        if self.is_worker or self.selection is None:
            return None
        if self._verdict_groups is None:
            from pytest_behavior.session.collect import BehaviorVerdictItem

            self._verdict_groups = {
                (item.trait.spec_path, item.trait.name, item.model)
                for item in self.selection.items
                if isinstance(item, BehaviorVerdictItem)
            }
        group = (trait.spec_path, trait.name, model)
        if group not in self._verdict_groups:
            return None
        return self._case_outcomes.setdefault(group, {})

    def _case_outcome(self, trait: Trait, case: Case, model: str) -> CaseOutcome:
        if self._reads is not None:
            # Keyed by the prefetch and read ahead; a case not cached takes the path below.
            answer = self._reads.take(case, model)
            if answer is not None:
                return self._scored(trait, case, model, answer)
        # The prefetch sent this case's request (or another worker did: answer() waits).
        requests = self.models.requests_for(trait, case, model)
        if len(requests) == 1:
            return self._outcome(trait, case, requests[0])
        from pytest_behavior.verdicts.sampling import combine_samples

        # Repeated samples are parsed from their text, whatever the trait's mode.
        return combine_samples(
            [self._outcome(trait, case, request, "generate") for request in requests]
        )

    def trait_result(
        self, trait: Trait, model: str, cases: Sequence[Case], position: tuple[int, int]
    ) -> TraitResult:
        """The verdict over ``cases``; raises CasesNotRun when some of them were not run.

        An adaptive trait's verdict is over the cases its looks asked (``cases`` is
        then ignored): the prefetch's, or the same looks replayed from the answers.
        """
        adaptive = None
        if trait.adaptive:
            adaptive = self._adaptive_trait(trait, model)
            outcomes = list(adaptive.outcomes)
        else:
            outcomes = self._ask(trait, model, cases)
        not_run = [outcome.error for outcome in outcomes if outcome.not_run and outcome.error]
        if not_run:
            raise CasesNotRun(not_run[0])
        from pytest_behavior.verdicts.results import fixed_verdict
        from pytest_behavior.verdicts.results import trait_result as build_trait_result

        verdict = build_trait_result if adaptive is not None else fixed_verdict
        result = verdict(
            trait=trait,
            model=model,
            outcomes=outcomes,
            confidence=self.settings.confidence,
            scoring=self.models.scoring_mode(trait),
            template=self.models.template_for(trait, model),
            position=position,
        )
        if adaptive is None:
            return result
        from pytest_behavior.verdicts.adaptive import adaptive_result

        return adaptive_result(result, adaptive)

    def _ask(self, trait: Trait, model: str, cases: Sequence[Case]) -> list[CaseOutcome]:
        # What the case items already scored is taken as it is: read and scored once.
        known = self._case_outcomes.pop((trait.spec_path, trait.name, model), {})
        missing = [case for case in cases if case.index not in known]
        self.fetcher.fetch(
            request for case in missing for request in self.models.requests_for(trait, case, model)
        )
        return [
            known[case.index] if case.index in known else self._case_outcome(trait, case, model)
            for case in cases
        ]

    # -- adaptive traits (adaptive.py) ----------------------------------------

    def _adaptive_state(self, trait: Trait, model: str) -> AdaptiveTrait:
        from pytest_behavior.verdicts.adaptive import AdaptiveTrait, case_order

        order = case_order(trait)
        # The probe (if any) asks the first case of the order: no request it won't use.
        exact = self.models.scoring_method(trait, model, order[0] if order else None) == "exact"
        state = AdaptiveTrait(
            trait=trait,
            model=model,
            order=order,
            confidence=self.settings.confidence,
            # Exact scoring scores every case it asks: the file is the population.
            population=len(trait.cases) if exact else None,
        )
        baseline = self._baseline_cases(trait, model)
        if baseline is not None:
            state.references["comparison"] = baseline
        return state

    def _adaptive_group(self, trait: Trait) -> list[AdaptiveTrait]:
        """The trait's adaptive states on every model it is asked of, made once.

        Compared side by side (``--behavior-compare-models``), each other model's
        state pairs with the first model's outcomes as both ask, and the first asks
        on until those comparisons are decided too: the group always stops together
        in the same way, whichever verdict item asks first.
        """
        models = self.settings.models if self.settings.compare_models else None
        group = []
        for model in models or ():
            key = (trait.spec_path, trait.name, model)
            if key not in self._adaptive:
                self._adaptive[key] = self._adaptive_state(trait, model)
            group.append(self._adaptive[key])
        if len(group) > 1 and not group[0].dependents:
            from pytest_behavior.verdicts.adaptive import BaselineCases
            from pytest_behavior.verdicts.compare import effective_tolerance

            first = group[0]
            tolerance = effective_tolerance(
                trait.regression_tolerance, self.settings.regression_tolerance
            )
            for state in group[1:]:
                state.references["model_comparison"] = BaselineCases(
                    matched=first.matched_by_id,
                    tolerance=tolerance,
                    bad_direction=trait.threshold.bad_direction,
                )
                first.dependents.append(state)
        return group

    def _adaptive_trait(self, trait: Trait, model: str) -> AdaptiveTrait:
        """The looks of an adaptive trait: the prefetch's, else replayed now."""
        key = (trait.spec_path, trait.name, model)
        state = self._adaptive.get(key)
        if state is None or state.gate is None:
            from pytest_behavior.verdicts.adaptive import run_rounds

            group = self._adaptive_group(trait)
            if not group:
                state = state or self._adaptive_state(trait, model)
                self._adaptive[key] = state
                group = [state]
            run_rounds(group, self._ask_batches)
        return self._adaptive[key]

    def _ask_batches(
        self,
        batches: Sequence[tuple[AdaptiveTrait, Sequence[Case]]],
        counts: FetchCounts | None = None,
    ) -> list[list[CaseOutcome]]:
        """One round of adaptive batches, sent together; each batch's outcomes in order."""
        requests = [
            [self.models.request_for(state.trait, case, state.model) for case in batch]
            for state, batch in batches
        ]
        flat = [request for batch in requests for request in batch]
        if counts is None:
            self.fetcher.fetch(flat)
        else:
            from pytest_behavior.fetch.progress import progress_for

            counts.planned += len(flat)
            self.fetcher.fetch(
                flat, counts=counts, progress=lambda counts: progress_for(self.config, counts)
            )
        return [
            [
                self._outcome(state.trait, case, request)
                for case, request in zip(batch, batch_requests, strict=True)
            ]
            for (state, batch), batch_requests in zip(batches, requests, strict=True)
        ]

    def _prefetch_adaptive(self, counts: FetchCounts) -> None:
        """Every selected adaptive trait, asked round by round until each is decided."""
        if self.selection is None:
            return
        from pytest_behavior.verdicts.adaptive import run_rounds

        states: list[AdaptiveTrait] = []
        for _, trait, model in self.selection.adaptive():
            key = (trait.spec_path, trait.name, model)
            group = self._adaptive_group(trait)
            if key not in self._adaptive:
                self._adaptive[key] = self._adaptive_state(trait, model)
            for state in group or [self._adaptive[key]]:
                if all(state is not known for known in states):
                    states.append(state)
        run_rounds(states, lambda batches: self._ask_batches(batches, counts))

    def _baseline_cases(self, trait: Trait, model: str) -> BaselineCases | None:
        """The baseline outcomes an adaptive trait's comparison pairs with, if any."""
        if self.settings.baseline is None:
            return None
        from pytest_behavior.verdicts.adaptive import BaselineCases, TraitKey
        from pytest_behavior.verdicts.compare import effective_tolerance

        found = self._baseline_for(TraitKey(trait=trait.name, spec=trait.spec_path, model=model))
        if found is None:
            return None
        reference = found[0]
        return BaselineCases(
            matched={c.id: bool(c.matched) for c in reference.cases if c.matched is not None},
            tolerance=effective_tolerance(
                trait.regression_tolerance, self.settings.regression_tolerance
            ),
            bad_direction=trait.threshold.bad_direction,
        )

    def _baseline_for(self, key: TraitNamed) -> tuple[TraitResult, str] | None:
        """The saved baseline's result for a trait on a model (loaded once), and its name."""
        assert self.settings.baseline is not None
        if self._baseline_lookup is None:
            from pytest_behavior.verdicts.baseline import baseline_reference, load_baseline

            path = self.settings.baseline
            self._baseline_lookup = baseline_reference(load_baseline(path), path)
        return self._baseline_lookup(key)

    # -- hooks ---------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        # ``selection`` is set at collection_finish when behavior items were selected
        # (plugin.py): a session without specs never scans its items.
        # With collection errors pytest stops before the first item: send nothing then.
        stopping = session.testsfailed and not session.config.option.continue_on_collection_errors
        if self.selection is not None and not session.config.option.collectonly and not stopping:
            self._prefetch(self.selection)
        return (yield)

    def _prefetch(self, selection: Selection) -> None:
        """Send every request the selected items need, before the first item runs.

        Under xdist every worker walks the same requests and sends those it
        claims first (see claims.py): each request goes out once, and the
        workers share them as fast as each can send.
        """
        from pytest_behavior.fetch.progress import FetchCounts, progress_for

        needed = selection.needed
        budgeted = self.settings.max_requests is not None or self.settings.max_cost is not None
        # Adaptive traits counted at their most (max_cases): a budget is a bound.
        plan = self.plan_for(selection.at_most) if budgeted else None
        self.preflight_files(plan).refuse_if_unsound()
        counts = FetchCounts()
        # Each model's method, decided once before its requests are built (models.py).
        self.models.resolve(chain(needed(), _adaptive_firsts(selection)), counts=counts)
        self._say_methods()
        counts.planned = sum(
            self.models.request_count(trait, model) for trait, _, model in needed()
        )
        requests = self._keyed_requests(needed())
        if self._may_spread():
            from pytest_behavior.fetch.processes import spread_fetch

            # Sent from fetch processes where that pays; what is left is sent here.
            requests = iter(spread_fetch(self, requests, counts))
        self.fetcher.fetch_keyed(
            requests, counts=counts, progress=lambda counts: progress_for(self.config, counts)
        )
        self._prefetch_adaptive(counts)
        if counts.sent == 0 and counts.skipped:
            self._say_all_cached(counts)

    def _keyed_requests(
        self, needed: Iterable[tuple[Trait, Case, str]]
    ) -> Iterator[tuple[str, ModelRequest]]:
        """(key, request) of what ``needed`` asks, each key derived once: planned for the
        case's item too, where it runs in this process (an xdist worker runs a part)."""
        from pytest_behavior.cache.keys import request_key

        if not self.is_worker:
            from pytest_behavior.session.read_ahead import PlannedReads

            self._reads = PlannedReads(self.cache)
        reads = self._reads
        for trait, case, model in needed:
            requests = self.models.requests_for(trait, case, model)
            for request in requests:
                key = request_key(request)
                if reads is not None and len(requests) == 1:
                    reads.plan(case, model, key)
                yield key, request

    def _say_methods(self) -> None:
        """Where litellm told a model's method in advance, say which and why (once a run)."""
        from pytest_behavior.fetch.progress import terminal_for

        terminal = terminal_for(self.config)
        for model, choice in self.models.choices().items():
            # No reason: decided by a cached answer or the endpoint, not by what litellm knows.
            if terminal is not None and choice.reason:
                said = f"{model} is scored by {choice.method}: {choice.reason}"
                terminal.write_line(f"behavior: {said}")

    def _may_spread(self) -> bool:
        """Whether the prefetch may use fetch processes (--behavior-fetch-processes).

        Not in xdist workers (they are processes already, splitting by claims), not
        when nothing is sent, and not when a conftest answers the requests: its
        pytest_behavior_complete lives in this process only.
        """
        if self.is_worker or self.settings.fetch_processes == 1 or not self.asks:
            return False
        from pytest_behavior.fetch.processes import uses_own_completion

        if not uses_own_completion(self):
            return True
        from pytest_behavior.fetch.progress import terminal_for

        terminal = terminal_for(self.config)
        if self.settings.fetch_processes is not None and terminal is not None:
            terminal.write_line(
                "behavior: --behavior-fetch-processes ignored: pytest_behavior_complete is "
                "implemented here (a conftest or plugin), and runs in this process only",
                yellow=True,
            )
        return False

    def _say_all_cached(self, counts: FetchCounts) -> None:
        """A run that sent nothing says so in one line (where the run may print)."""
        from pytest_behavior.fetch.progress import terminal_for

        terminal = terminal_for(self.config)
        if terminal is None:
            return
        missing = f"; {counts.not_run} not cached (readonly)" if counts.not_run else ""
        probed = sum(check.probed for check in self.models.checkpoints.values())
        # The fingerprint probe is the one request a cached rerun makes per model.
        fingerprints = f" but {probed} checkpoint fingerprint{'s' * (probed > 1)}" if probed else ""
        sent = "nothing was sent" + fingerprints
        terminal.write_line(
            f"behavior: {counts.skipped} answers from the cache "
            f"({self.cache.location}){missing}; {sent}"
        )

    def plan_for(self, needed: Callable[[], Iterator[tuple[Trait, Case, str]]]) -> RunPlan:
        """What the run would send, without sending (the probe too is only looked up)."""
        from pytest_behavior.fetch.budget import litellm_price, plan_requests
        from pytest_behavior.fetch.revision import split_revision

        # Decided from the cache alone: a real run still probes what the plan guessed.
        setups = self.models.resolve(needed(), provisional=True)
        requests = (
            (trait.name, request)
            for trait, case, model in needed()
            for request in model_requests(trait, case, setups[model], self.settings.scoring)
        )
        priced = self.settings.dry_run or self.settings.max_cost is not None
        plan = plan_requests(
            requests,
            self.cache,
            price=(lambda model: litellm_price(split_revision(model).name)) if priced else None,
        )
        plan.undecided = {
            model for model, setup in setups.items() if setup.choice and setup.choice.guessed
        }
        return plan

    # -- preflight (preflight.py) ---------------------------------------------

    def preflight_files(self, plan: RunPlan | None) -> Preflight:
        """The checks that need no network: files read and written, budgets."""
        from pytest_behavior.session.preflight import (
            Preflight,
            budget_findings,
            input_findings,
            output_findings,
        )

        findings = input_findings(self.settings) + output_findings(self.settings)
        if plan is not None:
            findings += budget_findings(self.settings, plan)
        return Preflight(tuple(findings))

    def preflight_sending(self) -> Preflight:
        """Credentials and endpoints of every model this run asks (local models aside:
        starting one is its own check); none where a conftest answers the requests."""
        from pytest_behavior.fetch.processes import uses_own_completion
        from pytest_behavior.session.preflight import Preflight, sending_findings

        if uses_own_completion(self):
            return Preflight(())
        models = [model for model in self.settings.models if not model.startswith(LOCAL_PREFIX)]
        return Preflight(tuple(sending_findings((model, self.endpoint(model)) for model in models)))

    def before_first_send(self) -> None:
        """Called once, just before the first uncached request leaves this process."""
        if self._sending_checked:
            return
        self._sending_checked = True
        self.preflight_sending().refuse_if_unsound()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        data: CaseData | VerdictData | NotRunData | None = getattr(item, "behavior_data", None)
        if call.when == "call" and data is not None:
            # Builtins, with and without xdist (which sends reports as builtins only):
            # every reader decodes them with item_data(), so both runs read alike.
            setattr(report, REPORT_ATTRIBUTE, data.to_wire())
            # This process's readers take the typed data as the item made it (an xdist
            # controller decodes the wire form; tests hold both to the same results).
            self.report_data.remember(report, data)
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = self.report_data(report)
        if isinstance(data, VerdictData):
            self.results.append(data.result)
            self.notices.extend([notice, subject] for notice, subject in data.notices)
        elif isinstance(data, NotRunData):
            trait = data.trait_not_run()
            if trait is not None:
                self.not_run_traits.append(trait)
            where = (data.model, data.reason)
            self.not_run[where] += 1
            listed = self.not_run_ids.setdefault(where, [])
            if len(listed) < NOT_RUN_LISTED:
                listed.append(report.nodeid)

    def pytest_report_teststatus(
        self, report: pytest.TestReport, config: pytest.Config
    ) -> tuple[str, str, str] | None:
        data = self.report_data(report)
        if isinstance(data, NotRunData):
            return "skipped", "n", "NOT RUN"
        if data is None or not report.passed:
            return None
        if isinstance(data, CaseData):
            matched = data.outcome.matched
            if matched is None:
                return "passed", "?", "UNPARSEABLE"
            return ("passed", "M", "MATCHES") if matched else ("passed", ".", "DIFFERS")
        verdict = data.result.verdict
        return "passed", "i" if verdict == "inconclusive" else "V", verdict.upper()

    def baseline_comparison(self, result: TraitResult) -> Comparison | None:
        """This result against the saved baseline, before the session-wide Holm adjustment."""
        if self.settings.baseline is None:
            return None
        from pytest_behavior.verdicts.compare import paired_comparison, spec_mismatch

        found = self._baseline_for(result)
        if found is None or spec_mismatch(result, found[0]) is not None:
            return None
        return paired_comparison(
            result, found[0], reference_name=found[1], confidence=self.settings.confidence
        )

    @property
    def cost(self) -> float:
        """USD this process paid for answers (cached answers are free), plus the workers'."""
        own = self._fetcher.cost if self._fetcher is not None else 0.0
        return own + self.workers_cost

    def sorted_results(self) -> list[TraitResult]:
        return sorted(self.results, key=lambda result: (result.spec, result.position, result.model))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._fetcher is not None and self._fetcher.claims is not None:
            self._fetcher.claims.close()
        if self._cache is not None:
            self._cache.close()
        if self._temporary_cache_dir is not None:
            shutil.rmtree(self._temporary_cache_dir, ignore_errors=True)
        for closer in reversed(self._closers):
            closer()
        self._closers.clear()


def _adaptive_firsts(selection: Selection) -> Iterator[tuple[Trait, Case, str]]:
    """Each selected adaptive trait's first case in its order: where it would probe the
    model's method, so the probe is a request its first look sends anyway."""
    from pytest_behavior.verdicts.adaptive import case_order

    for _, trait, model in selection.adaptive():
        order = case_order(trait)
        if order:
            yield trait, order[0], model


def default_cache_directory(rootpath: Path) -> Path:
    """``.behavior_cache/responses`` in the rootdir, marked as a cache for git and backups.

    A cache in the old place (under ``.pytest_cache``) is moved here on first use, so
    its answers are not asked for again.
    """
    directory = rootpath / DEFAULT_CACHE_DIR
    home = directory.parent
    old = rootpath.joinpath(*_OLD_CACHE_DIR)
    try:
        if not home.exists():
            home.mkdir(parents=True, exist_ok=True)
            (home / ".gitignore").write_text(
                "# Created by pytest-behavior: cached model answers.\n*\n", encoding="utf-8"
            )
            (home / "CACHEDIR.TAG").write_text(
                "Signature: 8a477f597d28d172789f06886806bc55\n"
                "# This file is a cache directory tag created by pytest-behavior.\n",
                encoding="utf-8",
            )
        if old.is_dir() and not directory.exists():
            old.rename(directory)
    except OSError:
        pass  # an unusable folder is reported, with its path, when the cache opens
    return directory
