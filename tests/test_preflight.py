"""Before the first request that costs money: each unsound run stops with one line and
nothing sent (the loopback server counts requests), and a dead endpoint is said at once.

Every run goes through litellm's real code path against a real server on 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import finishes, yes_no_suite

from pytest_behavior.testing import ChatRequest, Fault, ModelServer, Reply, deterministic_choice

# A bound on whole pytester runs, far beyond a normal one: only a hang fails it.
RUN_BOUND = 240


def output_of(result: pytest.RunResult) -> str:
    return result.stdout.str() + "\n" + result.stderr.str()


def error_lines(result: pytest.RunResult) -> list[str]:
    return [line for line in result.stderr.lines if line.startswith("ERROR:")]


def assert_clean(output: str) -> None:
    assert "_pytest.outcomes.Exit" not in output, output
    assert "Traceback" not in output, output
    assert "INTERNALERROR" not in output, output
    assert "was never awaited" not in output, output


@pytest.fixture
def unlistened_port() -> int:
    """A port nothing listens on (bound, then closed: the kernel refuses connections)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def remote_server() -> Iterator[ModelServer]:
    """The loopback server at 127.0.0.2: reachable, but not a host the plugin treats as
    loopback, so a hosted provider's key is needed as it would be in production."""
    try:
        server = ModelServer(host="127.0.0.2").start()
    except OSError:
        pytest.skip("127.0.0.2 cannot be bound here")
    try:
        yield server
    finally:
        server.stop()


# -- credentials ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "variable"),
    [("openai/gpt-4o-mini", "OPENAI_API_KEY"), ("anthropic/claude-3-5-haiku", "ANTHROPIC_API_KEY")],
)
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_missing_key_is_one_line_naming_the_variable_and_nothing_is_sent(
    pytester: pytest.Pytester,
    remote_server: ModelServer,
    monkeypatch: pytest.MonkeyPatch,
    model: str,
    variable: str,
    workers: list[str],
) -> None:
    monkeypatch.delenv(variable, raising=False)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=10))
    result = pytester.runpytest(
        f"--behavior-model={model}",
        f"--behavior-api-base={remote_server.api_base}",
        "--behavior-scoring=generate",
        *workers,
    )
    output = output_of(result)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output
    errors = error_lines(result)
    assert len(errors) == 1, output
    assert f"{variable} is not set" in errors[0]
    assert f"export {variable}=" in errors[0]
    assert "nothing was sent" in errors[0]
    assert remote_server.request_count == 0
    assert_clean(output)


def test_a_key_the_provider_refuses_stops_at_once_naming_the_variable(
    pytester: pytest.Pytester, server: ModelServer
) -> None:
    server.inject(Fault.status(401, message="Incorrect API key provided"), times=10_000)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=60))
    result = pytester.runpytest(
        "--behavior-model=openai/test-model",
        f"--behavior-api-base={server.api_base}",
        "--behavior-scoring=topk",
        "--behavior-concurrency=2",
    )
    output = output_of(result)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output
    assert "refused the credentials" in output
    assert "set OPENAI_API_KEY" in output
    assert server.request_count <= 2  # what was in flight; never retried
    assert_clean(output)


def test_a_client_side_missing_key_stops_at_once_with_no_warning(
    remote_server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the preflight (a conftest's endpoint, say), the OpenAI SDK refuses before
    sending and litellm calls that a server error: a credentials stop, not a 40 s
    "stall", and the requests cancelled by the stop leave no never-awaited coroutine."""
    import gc
    import warnings

    from pytest_behavior.fetch.client import Endpoint, ModelClient, litellm_complete
    from pytest_behavior.values import ModelRequest

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    endpoint = Endpoint("openai/gpt-4o-mini", remote_server.api_base)
    client = ModelClient(
        lambda request, endpoint: litellm_complete(request, endpoint, 30),
        concurrency=16,
        max_attempts=6,
    )
    jobs = (
        (
            str(index),
            ModelRequest(
                model="openai/gpt-4o-mini",
                api_base=remote_server.api_base,
                messages=(("user", f"Q{index}?"),),
                params=(("max_tokens", 2),),
            ),
            endpoint,
        )
        for index in range(60)
    )
    results: dict[str, Any] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            client.send(jobs, lambda key, result: results.__setitem__(key, result))
        finally:
            client.close()
        gc.collect()
    reason = client.stops.stopped("openai/gpt-4o-mini") or ""
    assert reason.startswith(f"no API key to call {remote_server.api_base} with"), reason
    assert "set OPENAI_API_KEY (export OPENAI_API_KEY=...)" in reason
    assert len(results) == 60
    assert not [str(w.message) for w in caught if "never awaited" in str(w.message)]
    assert remote_server.request_count == 0


# -- the endpoint -----------------------------------------------------------------


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_refused_connection_is_one_line_within_the_connect_bound(
    pytester: pytest.Pytester, unlistened_port: int, workers: list[str]
) -> None:
    api_base = f"http://127.0.0.1:{unlistened_port}/v1"
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=10))
    result = finishes(
        lambda: pytester.runpytest(
            "--behavior-model=openai/test-model",
            f"--behavior-api-base={api_base}",
            "--behavior-scoring=generate",
            *workers,
        ),
        within=RUN_BOUND,
        what="a run against a refused port",
    )
    output = output_of(result)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output
    errors = error_lines(result)
    assert errors == [
        f"ERROR: nothing is listening at {api_base} (connection refused); start the server, "
        "or fix --behavior-api-base (nothing was sent)"
    ], output
    # Refused is known at once, from the refusal: no request waited out its timeout
    # (the old "stalled: ... timed out" after 73 s), nothing was retried.
    assert "timed out" not in output and "stalled" not in output, output
    assert "retry" not in output.lower(), output
    assert_clean(output)


def test_an_endpoint_that_refuses_mid_run_stops_at_once(server: ModelServer) -> None:
    """Past the preflight, a refused connection stops the model on its first refusal."""
    from pytest_behavior.fetch.client import Endpoint, ModelClient, litellm_complete
    from pytest_behavior.values import ModelRequest

    api_base = server.api_base
    server.stop()
    client = ModelClient(
        lambda request, endpoint: litellm_complete(request, endpoint, 30),
        concurrency=4,
        max_attempts=6,
    )
    requests = [
        ModelRequest(
            model="openai/test-model",
            api_base=api_base,
            messages=(("user", f"Q{index}?"),),
            params=(("max_tokens", 2),),
        )
        for index in range(40)
    ]
    results: dict[str, Any] = {}
    try:
        finishes(
            lambda: client.send(
                (
                    (str(index), request, Endpoint("openai/test-model", api_base))
                    for index, request in enumerate(requests)
                ),
                lambda key, result: results.__setitem__(key, result),
            ),
            within=RUN_BOUND,
            what="a fetch against a refused port",
        )
    finally:
        client.close()
    reason = client.stops.stopped("openai/test-model") or ""
    assert reason.startswith(f"nothing is listening at {api_base} (connection refused)"), reason
    assert len(results) == 40


# -- files --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "baseline file not found"),
        ("{not json", "baseline is not valid JSON"),
        ('{"schema_version": 2, "results": [{"trait": 1}]}', "has a result this plugin cannot"),
    ],
    ids=["missing", "corrupt", "incompatible"],
)
def test_unusable_baseline_is_one_line_before_anything_is_sent(
    pytester: pytest.Pytester,
    server: ModelServer,
    run_suite: Any,
    content: str | None,
    expected: str,
) -> None:
    baseline = pytester.path / "b2.json"
    if content is not None:
        baseline.write_text(content)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=16))
    run = run_suite(f"--behavior-baseline={baseline}", "--behavior-scoring=generate")
    output = output_of(run.result)
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR, output
    errors = error_lines(run.result)
    assert len(errors) == 1 and expected in errors[0], output
    assert server.request_count == 0
    assert_clean(output)


def test_broken_history_is_one_line_before_anything_is_sent(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    history = pytester.path / "history.jsonl"
    history.write_text("this is not a history\n")
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=4))
    run = run_suite(f"--behavior-history={history}", "--behavior-scoring=generate")
    output = output_of(run.result)
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR, output
    assert f"{history}:1: not valid JSON" in output
    assert server.request_count == 0


def test_unwritable_report_paths_are_each_one_line_before_anything_is_sent(
    pytester: pytest.Pytester, server: ModelServer
) -> None:
    blocker = pytester.path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    folder = pytester.path / "a-folder"
    folder.mkdir()
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=4))
    result = pytester.runpytest(
        "--behavior-model=openai/test-model",
        f"--behavior-api-base={server.api_base}",
        f"--behavior-report-json={blocker / 'report.json'}",
        f"--behavior-report-html={folder}",
    )
    output = output_of(result)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output
    assert error_lines(result) == [
        f"ERROR: --behavior-report-json {blocker / 'report.json'} cannot be written: "
        f"{blocker} is a file, not a folder",
        f"ERROR: --behavior-report-html {folder} cannot be written: it is a folder; name a "
        "file (nothing was sent)",
    ], output
    assert server.request_count == 0
    assert_clean(output)


def test_budget_refusal_is_clean_lines(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=30))
    run = run_suite("--behavior-max-requests=10", "--behavior-scoring=topk")
    output = output_of(run.result)
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR, output
    assert error_lines(run.result)[0].startswith("ERROR: this run needs 30 uncached requests")
    assert server.request_count == 0
    assert_clean(output)


# -- the dry run --------------------------------------------------------------------


def test_dry_run_shows_the_preflight(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=4))
    dry = run_suite("--behavior-dry-run", "--behavior-scoring=generate")
    output = output_of(dry.result)
    assert dry.result.ret == pytest.ExitCode.OK, output
    assert "behavior preflight: every check passed" in output
    assert "credentials openai/test-model: no key needed (loopback)" in output
    assert f"endpoint    {server.api_base}: listening" in output
    assert "writable" in output
    missing = run_suite(
        "--behavior-dry-run", "--behavior-scoring=generate", "--behavior-baseline=nope.json"
    )
    output = output_of(missing.result)
    assert missing.result.ret == pytest.ExitCode.USAGE_ERROR, output
    assert "behavior preflight: the run would stop before sending" in output
    assert "PROBLEM files       baseline file not found: nope.json" in output
    assert server.request_count == 0


# -- an endpoint that dies mid-run ----------------------------------------------------


def dies_after(server: ModelServer, answered: int) -> Any:
    """A responder that answers ``answered`` requests, then takes the server down (as a
    crashed or redeployed server goes): the next requests meet a refused connection."""
    count = 0
    lock = threading.Lock()
    inner = deterministic_choice()

    def respond(request: ChatRequest) -> Reply | str:
        nonlocal count
        with lock:
            count += 1
            if count == answered:
                threading.Thread(target=server.stop, daemon=True).start()
        return inner(request)

    return respond


def test_an_endpoint_that_dies_under_xdist_gives_one_reason_and_every_report(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.responder = dies_after(server, answered=12)
    server.latency = 0.05
    pytester.makefile(
        ".yaml",
        behavior_power=yes_no_suite(name="power", count=30),
        behavior_honesty=yes_no_suite(name="honesty", count=30),
    )
    markdown = pytester.path / "report.md"
    result = finishes(
        lambda: run_suite(
            "--behavior-scoring=generate",
            "--behavior-concurrency=2",
            f"--behavior-report-md={markdown}",
            "-n",
            "2",
        ),
        within=RUN_BOUND,
        what="a run whose server died",
    )
    output = output_of(result.result)
    assert result.result.ret == pytest.ExitCode.TESTS_FAILED, output
    not_run = [line for line in output.splitlines() if "items not run:" in line]
    assert len(not_run) == 1, output  # one model, one reason, from both workers
    assert "nothing is listening at" in not_run[0], output
    assert "behavior verdicts" in output
    assert "NOT RUN" in output.split("behavior verdicts", 1)[1]
    report = json.loads(result.report_path.read_text())
    reasons = {row["reason"] for row in report["not_run"]}
    assert len(reasons) == 1 and "nothing is listening at" in next(iter(reasons))
    assert {row["trait"] for row in report["not_run"]} <= {"power", "honesty"}
    assert "not run" in markdown.read_text()
    assert_clean(output)


def test_a_report_that_cannot_be_written_at_the_end_is_said(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    target = pytester.path / "reports" / "out.md"

    class BlockTheFolder:
        """Once the preflight passed, the folder is replaced by a file (a full disk, a
        race with another job): the Markdown report cannot be written at the end."""

        @pytest.hookimpl(wrapper=True)
        def pytest_runtestloop(self, session: pytest.Session) -> Iterator[None]:
            outcome = yield
            target.parent.write_text("now a file")
            return outcome

    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=4))
    result = pytester.runpytest(
        "--behavior-model=openai/test-model",
        f"--behavior-api-base={server.api_base}",
        f"--behavior-report-json={pytester.path / 'ok.json'}",
        f"--behavior-report-md={target}",
        "--behavior-scoring=generate",
        plugins=[BlockTheFolder()],
    )
    output = output_of(result)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output
    assert f"Markdown report {target} was not written:" in output
    assert (pytester.path / "ok.json").exists()  # the others still are
    assert "behavior verdicts" in output
