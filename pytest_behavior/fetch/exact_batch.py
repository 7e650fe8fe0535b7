"""Several cases' exact-scoring requests as one completions request.

An exact request costs the client about as much CPU as a chat request, whatever
the number of prompts it carries (litellm's text-completion path builds its
client, request and response objects once per call), so cases that wait at the
same moment for the same endpoint (endpoint, key and parameters alike) go out
together: one ``atext_completion`` whose ``prompt`` list is every case's prompts
in turn. The choices are split back by index and each case read by
``exact.answer_from_choices``, exactly as from a request of its own (a server
scores each prompt of the list on its own: the numbers and cache keys are those
of one request per case).

No timer: the first case to arrive schedules the send with ``loop.call_soon``,
so every sender that reaches this point in the same turn of the loop joins it.
After a batch answers, its senders resume together and the next batch forms the
same way. Where the model's gate lets one request fly at a time (llama-server
with one slot), batches are of one case: nothing changes there.

Failures stay per case:

- a transient error (5xx, 429, timeout, dropped connection) reaches every case of
  the batch; each case's own retry (client.py) asks again. A rate limit says
  nothing of the cases: they may share a request again. Any other error may be one
  prompt's (a server that fails on it): each case's retries go alone, so a prompt
  that keeps failing spends its own attempts and no other case's;
- a 400/422 on a batch of several cases may be one case's fault (a prompt too long
  for the context): each case is sent again alone, so only that one fails;
- a refusal of the route (404, 405, 501) or a wrong number of choices is the
  endpoint's answer for every case: each gets it, nothing is resent;
- a case cancelled while it waits (its model stopped, Ctrl-C) stops waiting; the
  others are still served, and the request is cancelled once nobody waits for it.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_behavior.fetch.exact import (
    ExactScoringUnsupported,
    answer_from_choices,
    choice_count_reason,
    echo_completion,
    exact_complete,
    sorted_choices,
)
from pytest_behavior.fetch.litellm_api import serving_stack_of
from pytest_behavior.fetch.retrying import is_rate_limit, is_transient
from pytest_behavior.values import Answer, ModelRequest

if TYPE_CHECKING:
    from pytest_behavior.fetch.client import Endpoint

# Cases per request, at most. Past 4-8 the client's CPU per case barely falls (2
# cases together cost 48% per case of one alone, 4 cases 31%, up to 8 at 16 in
# flight 32%: benchmarks/exact_cpu.py), while a bigger batch costs more when one
# case's 400 sends the others again alone, and servers cap the prompts of one
# request (vLLM schedules them together; proxies limit body sizes). The benchmark
# sets 1 to measure one case per request.
MAX_CASES = 8
# A refusal of the request's content, which may be one case's: resent alone.
_CASE_STATUSES = frozenset({400, 422})
_CASE_NAMES = frozenset({"BadRequestError", "UnprocessableEntityError"})

BatchKey = tuple[str, "str | None", "str | None", tuple[tuple[str, Any], ...]]


class _Alone:
    """The outcome telling a case to send its request alone."""


ALONE = _Alone()


@dataclass(eq=False)
class _Waiting:
    request: ModelRequest
    timeout: float
    future: asyncio.Future[Answer | _Alone]
    # The batch it went out with, once sent (to cancel it when nobody waits any more).
    batch: _Batch | None = None


@dataclass(eq=False)
class _Batch:
    key: BatchKey
    endpoint: Endpoint
    api_key: str | None
    cases: list[_Waiting] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


_BATCHERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ExactBatcher] = (
    weakref.WeakKeyDictionary()
)


async def batched_exact_complete(
    request: ModelRequest, endpoint: Endpoint, *, timeout: float, api_key: str | None
) -> Answer:
    """``exact.exact_complete``, sharing a request with the cases waiting beside it."""
    key: BatchKey = (endpoint.litellm_model, endpoint.api_base, api_key, request.params)
    try:
        hash(key)
    except TypeError:  # a parameter value that is a list: never shared, sent alone
        return await exact_complete(request, endpoint, timeout=timeout, api_key=api_key)
    if MAX_CASES <= 1:
        return await exact_complete(request, endpoint, timeout=timeout, api_key=api_key)
    loop = asyncio.get_running_loop()
    batcher = _BATCHERS.get(loop)
    if batcher is None:
        batcher = _BATCHERS[loop] = ExactBatcher(loop)
    if request in batcher.alone:  # a retry after its shared request failed
        answer = await exact_complete(request, endpoint, timeout=timeout, api_key=api_key)
        batcher.alone.discard(request)
        return answer
    outcome = await batcher.submit(key, request, endpoint, timeout=timeout, api_key=api_key)
    if isinstance(outcome, _Alone):
        return await exact_complete(request, endpoint, timeout=timeout, api_key=api_key)
    return outcome


class ExactBatcher:
    """The batches forming on one event loop, by endpoint, key and parameters."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._open: dict[BatchKey, _Batch] = {}
        self._running: set[asyncio.Task[None]] = set()  # the loop keeps weak references only
        # Cases whose shared request failed (not rate-limited): their retries go alone,
        # until one is answered (a case that fails for good stays: a few, at most).
        self.alone: set[ModelRequest] = set()

    async def submit(
        self,
        key: BatchKey,
        request: ModelRequest,
        endpoint: Endpoint,
        *,
        timeout: float,
        api_key: str | None,
    ) -> Answer | _Alone:
        batch = self._open.get(key)
        if batch is None:
            batch = self._open[key] = _Batch(key, endpoint, api_key)
            self._loop.call_soon(self._send, batch)
        waiting = _Waiting(request, timeout, self._loop.create_future())
        batch.cases.append(waiting)
        if len(batch.cases) >= MAX_CASES:
            self._send(batch)  # full: the next case opens a new batch
        try:
            return await waiting.future
        except asyncio.CancelledError:
            self._abandon(waiting)
            raise
        except Exception as exc:
            shared = waiting.batch is not None and len(waiting.batch.cases) > 1
            if shared and is_transient(exc) and not is_rate_limit(exc):
                self.alone.add(request)
            raise

    def _send(self, batch: _Batch) -> None:
        if self._open.get(batch.key) is batch:
            del self._open[batch.key]
        if batch.task is not None:
            return  # sent when it filled up; this is the turn's scheduled send
        batch.cases = [case for case in batch.cases if not case.future.done()]
        if not batch.cases:
            return
        for case in batch.cases:
            case.batch = batch
        batch.task = self._loop.create_task(self._serve(batch))
        self._running.add(batch.task)
        batch.task.add_done_callback(self._running.discard)

    @staticmethod
    def _abandon(waiting: _Waiting) -> None:
        """A case stopped waiting: its request goes too once no case of it is left."""
        future = waiting.future
        if future.done() and not future.cancelled():
            future.exception()  # answered as it was cancelled: the error is not news
        batch = waiting.batch
        if batch is None or batch.task is None or batch.task.done():
            return  # not sent yet: the send skips it
        if all(case.future.cancelled() for case in batch.cases):
            batch.task.cancel()

    async def _serve(self, batch: _Batch) -> None:
        cases = batch.cases
        try:
            outcomes = await _outcomes(batch)
        except asyncio.CancelledError:  # the loop is closing: nobody waits forever
            for case in cases:
                case.future.cancel()
            raise
        except Exception as exc:  # every case meets the request's error
            outcomes = [exc] * len(cases)
        for case, outcome in zip(cases, outcomes, strict=True):
            if case.future.done():
                continue
            if isinstance(outcome, BaseException):
                case.future.set_exception(outcome)
            else:
                case.future.set_result(outcome)


async def _outcomes(batch: _Batch) -> list[Answer | _Alone | Exception]:
    """Each case's answer out of one request; the request's own error raised."""
    cases = batch.cases
    prompts = [
        case.request.prompt + continuation
        for case in cases
        for continuation in case.request.continuations
    ]
    try:
        response = await echo_completion(
            prompts,
            batch.key[3],
            batch.endpoint,
            # The timeout measures service: a server works through k cases' prompts
            # in about k times one case's time, so a batch must not be called stalled.
            timeout=sum(case.timeout for case in cases),
            api_key=batch.api_key,
        )
    except ExactScoringUnsupported as exc:
        if len(cases) > 1 and _may_be_one_case(exc):
            return [ALONE] * len(cases)
        raise
    choices = sorted_choices(response)
    if len(choices) != len(prompts):
        raise ExactScoringUnsupported(choice_count_reason(len(choices), len(prompts)))
    stack = serving_stack_of(response)
    outcomes: list[Answer | _Alone | Exception] = []
    start = 0
    for case in cases:
        continuations = case.request.continuations
        own = choices[start : start + len(continuations)]
        start += len(continuations)
        try:
            outcomes.append(answer_from_choices(own, case.request.prompt, continuations, stack))
        except ExactScoringUnsupported as exc:  # this case's answer only
            outcomes.append(exc)
    return outcomes


def _may_be_one_case(exc: ExactScoringUnsupported) -> bool:
    """Whether the refusal may be about one case's prompt rather than the route."""
    cause = exc.__cause__
    status = getattr(cause, "status_code", None)
    return status in _CASE_STATUSES or type(cause).__name__ in _CASE_NAMES
