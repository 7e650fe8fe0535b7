"""The plugin object of one pytest process: answers, verdicts and the session gate.

Before items run, every request the selected items need is known; the
uncached ones are sent concurrently and land in the cache as they arrive.
Items then read their answers. Under xdist each worker fetches its share and
computes verdicts from the shared cache; the controller gathers the verdicts
from the test reports and renders them.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Generator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_behavior.cache import ResponseCache, request_key
from pytest_behavior.client import Endpoint, ModelClient
from pytest_behavior.errors import RequestFailed
from pytest_behavior.model import LOCAL_PREFIX, Answer, Case, ModelRequest, Trait
from pytest_behavior.prompting import build_request, resolve_template, sampling_params
from pytest_behavior.results import case_outcome, is_failing
from pytest_behavior.results import trait_result as build_trait_result
from pytest_behavior.settings import BehaviorSettings

if TYPE_CHECKING:
    from pytest_behavior.collect import BehaviorCaseItem, BehaviorItem, BehaviorVerdictItem

RUN_KEY = pytest.StashKey["BehaviorRun"]()


def run_of(config: pytest.Config) -> BehaviorRun:
    return config.stash[RUN_KEY]


class BehaviorRun:
    """Registered as a plugin in pytest_configure, unregistered in pytest_unconfigure."""

    def __init__(self, config: pytest.Config, settings: BehaviorSettings) -> None:
        self.config = config
        self.settings = settings
        self.is_worker = hasattr(config, "workerinput")
        self.results: list[dict[str, Any]] = []
        self._cache: ResponseCache | None = None
        self._temporary_cache_dir: Path | None = None
        self._client: ModelClient | None = None
        self._endpoints: dict[str, Endpoint] = {}
        self._model_templates: dict[str, str | None] = {}
        self._closers: list[Callable[[], None]] = []
        self._failures: dict[str, RequestFailed] = {}
        self._groups: dict[tuple[str, str, str], list[Case]] | None = None

    # -- cache and client ---------------------------------------------------

    @property
    def cache(self) -> ResponseCache:
        if self._cache is None:
            self._cache = ResponseCache(self._cache_directory())
        return self._cache

    def _cache_directory(self) -> Path:
        if not self.settings.use_cache:
            shared = getattr(self.config, "workerinput", {}).get("behavior_temporary_cache")
            if shared:
                return Path(shared)
            self._temporary_cache_dir = Path(tempfile.mkdtemp(prefix="pytest-behavior-"))
            return self._temporary_cache_dir
        if self.settings.cache_dir is not None:
            return self.settings.cache_dir
        if self.config.cache is not None:
            return self.config.cache.mkdir("behavior") / "responses"
        return self.config.rootpath / ".pytest_cache" / "behavior" / "responses"

    def temporary_cache_for_workers(self) -> str | None:
        """With --behavior-no-cache, workers share one throwaway cache made by the controller."""
        if self.settings.use_cache:
            return None
        return str(self.cache.directory)

    @property
    def client(self) -> ModelClient:
        if self._client is None:
            hook = self.config.hook

            def complete(request: ModelRequest, endpoint: Endpoint) -> Any:
                return hook.pytest_behavior_complete(
                    request=request, endpoint=endpoint, config=self.config
                )

            self._client = ModelClient(
                complete,
                concurrency=self.settings.concurrency,
                max_attempts=self.settings.max_attempts,
            )
        return self._client

    def endpoint(self, model: str) -> Endpoint:
        """Where ``model`` is served; resolved (a local model started) only when needed."""
        if model not in self._endpoints:
            self._endpoints[model] = self.config.hook.pytest_behavior_endpoint(
                model=model, config=self.config
            )
        return self._endpoints[model]

    def model_template(self, model: str) -> str | None:
        """The prompt template a model prefers (a base model wants plain text), if any."""
        if model not in self._model_templates:
            self._model_templates[model] = self.config.hook.pytest_behavior_prompt_template(
                model=model, config=self.config
            )
        return self._model_templates[model]

    def add_closer(self, closer: Callable[[], None]) -> None:
        """Run ``closer`` when the session ends (local model servers register here)."""
        self._closers.append(closer)

    # -- requests ----------------------------------------------------------

    def _scoring_mode(self, trait: Trait) -> str:
        return self.settings.scoring or trait.scoring

    def template_for(self, trait: Trait, model: str) -> str:
        return resolve_template(trait, self.model_template(model))

    def request_for(self, trait: Trait, case: Case, model: str) -> ModelRequest:
        return build_request(
            case,
            template=self.template_for(trait, model),
            model=model,
            # A local model's port changes every session; its name identifies it.
            api_base=None if model.startswith(LOCAL_PREFIX) else self.settings.api_base,
            params=sampling_params(
                self._scoring_mode(trait),
                max_tokens=self.settings.max_tokens,
                top_logprobs=self.settings.top_logprobs,
            ),
        )

    def fetch(self, requests: Iterable[ModelRequest]) -> None:
        """Send every request that is neither cached nor known to fail, concurrently."""
        cache = self.cache
        jobs = []
        seen: set[str] = set()
        for request in requests:
            key = request_key(request)
            if key in seen or key in self._failures or key in cache:
                continue
            seen.add(key)
            jobs.append((key, request, self.endpoint(request.model)))
        if not jobs:
            return

        def store(key: str, result: Answer | RequestFailed) -> None:
            if isinstance(result, RequestFailed):
                self._failures[key] = result  # never cached: the next run asks again
            else:
                cache.set(key, result)

        self.client.fetch(jobs, store)

    def answer(self, request: ModelRequest) -> Answer | RequestFailed:
        key = request_key(request)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        if key not in self._failures:
            self.fetch([request])
            cached = self.cache.get(key)
            if cached is not None:
                return cached
        return self._failures.get(key) or RequestFailed("no answer was recorded")

    def _outcome(self, trait: Trait, case: Case, model: str) -> dict[str, Any]:
        result = self.answer(self.request_for(trait, case, model))
        if isinstance(result, RequestFailed):
            return case_outcome(case, None, None, result.reason)
        score = self.config.hook.pytest_behavior_score(
            answer=result,
            case=case,
            trait=trait,
            mode=self._scoring_mode(trait),
            config=self.config,
        )
        return case_outcome(case, result, score, None)

    # -- what items call ---------------------------------------------------

    def case_outcome(self, item: BehaviorCaseItem) -> dict[str, Any]:
        request = self.request_for(item.trait, item.case, item.model)
        key = request_key(request)
        if key not in self.cache and key not in self._failures:
            # Another worker's share, not there yet: fetch this trait's missing answers at once.
            cases = self._groups_by_key(item.session).get(item.group, [item.case])
            self.fetch(self.request_for(item.trait, case, item.model) for case in cases)
        return self._outcome(item.trait, item.case, item.model)

    def trait_result(self, item: BehaviorVerdictItem) -> dict[str, Any]:
        cases = self._selected_cases(item)
        self.fetch(self.request_for(item.trait, case, item.model) for case in cases)
        outcomes = [self._outcome(item.trait, case, item.model) for case in cases]
        return build_trait_result(
            trait=item.trait,
            model=item.model,
            outcomes=outcomes,
            confidence=self.settings.confidence,
            scoring=self._scoring_mode(item.trait),
            template=self.template_for(item.trait, item.model),
            position=item.position,
        )

    def _selected_cases(self, item: BehaviorVerdictItem) -> list[Case]:
        """The cases of this trait that the session selected; all of them when none was."""
        return self._groups_by_key(item.session).get(item.group) or list(item.trait.cases)

    def _groups_by_key(self, session: pytest.Session) -> dict[tuple[str, str, str], list[Case]]:
        if self._groups is None:
            from pytest_behavior.collect import BehaviorCaseItem

            self._groups = {}
            for selected in session.items:
                if isinstance(selected, BehaviorCaseItem):
                    self._groups.setdefault(selected.group, []).append(selected.case)
        return self._groups

    # -- hooks ---------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        from pytest_behavior.collect import BehaviorItem

        items = [item for item in session.items if isinstance(item, BehaviorItem)]
        if items and not session.config.option.collectonly:
            self.fetch(self._my_share(self._requests_for(items)))
        return (yield)

    def _my_share(self, requests: Iterable[ModelRequest]) -> Iterable[ModelRequest]:
        """On an xdist worker, the slice of requests this worker sends up front."""
        if not self.is_worker:
            return requests
        workerinput = getattr(self.config, "workerinput", {})
        count = int(workerinput.get("workercount", 1))
        index = int(str(workerinput.get("workerid", "gw0")).lstrip("gw") or 0)
        return (r for r in requests if int(request_key(r)[:8], 16) % count == index)

    def _requests_for(self, items: list[BehaviorItem]) -> Iterable[ModelRequest]:
        from pytest_behavior.collect import BehaviorCaseItem, BehaviorVerdictItem

        for item in items:
            if isinstance(item, BehaviorCaseItem):
                yield self.request_for(item.trait, item.case, item.model)
            elif isinstance(item, BehaviorVerdictItem):
                for case in self._selected_cases(item):
                    yield self.request_for(item.trait, case, item.model)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        data = getattr(item, "behavior_data", None)
        if call.when == "call" and data is not None:
            report.behavior = data  # type: ignore[attr-defined]
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "behavior", None)
        if report.when == "call" and data is not None and data.get("kind") == "verdict":
            self.results.append(data["result"])

    def pytest_report_teststatus(
        self, report: pytest.TestReport, config: pytest.Config
    ) -> tuple[str, str, str] | None:
        data = getattr(report, "behavior", None)
        if report.when != "call" or data is None or not report.passed:
            return None
        if data["kind"] == "case":
            if data["matched"] is None:
                return "passed", "?", "UNPARSEABLE"
            return ("passed", "M", "MATCHES") if data["matched"] else ("passed", ".", "DIFFERS")
        verdict = data["result"]["verdict"]
        return "passed", "i" if verdict == "inconclusive" else "V", verdict.upper()

    def sorted_results(self) -> list[dict[str, Any]]:
        return sorted(
            self.results, key=lambda result: (result["spec"], result["position"], result["model"])
        )

    def failing_results(self) -> list[dict[str, Any]]:
        return [r for r in self.sorted_results() if is_failing(r, strict=self.settings.strict)]

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._cache is not None:
            self._cache.close()
        if self._temporary_cache_dir is not None:
            shutil.rmtree(self._temporary_cache_dir, ignore_errors=True)
        for closer in reversed(self._closers):
            closer()
        self._closers.clear()
