"""format: chat | text, one prompt whatever the scoring path (prompt_format.py).

The loopback server records every request: a chat request has messages, a legacy
completions request a raw prompt and no messages (an exact one also ``echo``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import yes_no_suite

from pytest_behavior.cache.keys import request_key
from pytest_behavior.errors import SpecError
from pytest_behavior.fetch.capabilities import UNKNOWN
from pytest_behavior.outcomes import TraitResult
from pytest_behavior.spec.loading import load_spec_file
from pytest_behavior.spec.prompt_format import (
    answer_from_text,
    method_for,
    sent_format,
    text_params,
)
from pytest_behavior.testing import ChatRequest, ModelServer, Reply
from pytest_behavior.values import ModelRequest
from pytest_behavior.verdicts.compare import spec_mismatch

GENERATED = ModelRequest(
    model="openai/m",
    api_base=None,
    messages=(("user", "Q?"),),
    params=(("temperature", 0.0), ("max_tokens", 5)),
)
EXACT = ModelRequest(
    model="openai/m",
    api_base=None,
    messages=(("user", "Q?"),),
    params=(("echo", True),),
    continuations=(" Yes", " No"),
)


def test_unset_format_keeps_the_cache_keys_of_earlier_versions() -> None:
    # Computed with the plugin before the format existed: every cached answer stays valid.
    assert request_key(GENERATED) == (
        "c4da9c632c117d3b35299a29aa39e75d4be2b7d7074f46fffdb3c94ea5ff7f93"
    )
    assert request_key(EXACT) == (
        "1daa12ebb78072aca1f3aff5242fe0143669056eca9982648fa7506cfab4ce0f"
    )


def test_a_declared_format_is_part_of_the_key() -> None:
    from dataclasses import replace

    keys = {
        request_key(replace(GENERATED, prompt_format=value)) for value in (None, "chat", "text")
    }
    assert len(keys) == 3


def test_a_chat_prompt_is_never_scored_as_raw_text() -> None:
    assert method_for("chat", "exact", UNKNOWN) == "topk"
    assert method_for("text", "exact", UNKNOWN) == "exact"
    assert method_for(None, "exact", UNKNOWN) == "exact"
    assert method_for("chat", "generate", UNKNOWN) == "generate"
    # Unset: what each path sends.
    assert (sent_format(None, "exact"), sent_format(None, "topk")) == ("text", "chat")
    assert sent_format("text", "topk") == "text"


def test_top_k_parameters_read_as_the_completions_endpoint_wants() -> None:
    params = {"temperature": 0.0, "logprobs": True, "top_logprobs": 5}
    assert text_params(params) == {"temperature": 0.0, "logprobs": 5}
    assert text_params({"max_tokens": 3}) == {"max_tokens": 3}


def test_a_legacy_completion_gives_its_top_alternatives_best_first() -> None:
    response = {
        "system_fingerprint": "b1",
        "choices": [
            {
                "text": " Yes",
                "finish_reason": "length",
                "logprobs": {"top_logprobs": [{" No": -1.5, " Yes": -0.3}]},
            }
        ],
    }
    answer = answer_from_text(response)
    assert answer.text == " Yes" and answer.serving_stack == "b1"
    assert answer.top_logprobs == (((" Yes", -0.3), (" No", -1.5)),)


def _spec(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "behavior_t.yaml"
    path.write_text(
        "traits:\n  - name: t\n    threshold: {max_rate: 1.0}\n"
        f"{body}"
        '    cases:\n      - question: "Q?"\n'
        '        answer_matching_behavior: " Yes"\n        answer_not_matching_behavior: " No"\n'
    )
    return path


def test_the_spec_states_the_format(tmp_path: Path) -> None:
    [trait] = load_spec_file(_spec(tmp_path, "    format: text\n")).traits
    assert trait.prompt_format == "text"
    [trait] = load_spec_file(_spec(tmp_path, "")).traits
    assert trait.prompt_format is None
    with pytest.raises(SpecError, match="format must be chat or text") as error:
        load_spec_file(_spec(tmp_path, "    format: raw\n"))
    assert error.value.line == 4
    # Whether a chat prompt can be scored exactly is the server's to say (fetch/chat_exact.py).
    [trait] = load_spec_file(_spec(tmp_path, "    format: chat\n    scoring: exact\n")).traits
    assert (trait.prompt_format, trait.scoring) == ("chat", "exact")


def _result(prompt_format: str | None) -> TraitResult:
    return TraitResult(
        model="m",
        trait="t",
        spec="s.yaml",
        source=None,
        description="",
        position=(0, 0),
        n=0,
        matches=0,
        unparseable=0,
        errors=0,
        rate=None,
        ci_low=0.0,
        ci_high=1.0,
        confidence=0.95,
        threshold={},
        bad_direction="higher",
        verdict="pass",
        prompt_format=prompt_format,
    )


def test_baselines_across_formats_are_refused_and_unknown_ones_compare() -> None:
    refused = spec_mismatch(_result("text"), _result("chat"))
    assert refused is not None and "prompt format differs" in refused
    assert spec_mismatch(_result("text"), _result(None)) is None  # an old baseline
    old = _result("chat").to_dict()
    del old["prompt_format"]
    assert TraitResult.from_dict(old).prompt_format is None


def _kinds(requests: list[ChatRequest]) -> list[str]:
    return [
        "echo" if request.body.get("echo") else "chat" if request.messages else "text"
        for request in requests
    ]


@pytest.mark.parametrize("scoring", ["auto", "topk", "generate"])
def test_one_format_on_every_path(
    pytester: pytest.Pytester, run_suite: Any, server: ModelServer, scoring: str
) -> None:
    server.responder = lambda request: Reply(" Yes", choices={" Yes": 0.7, " No": 0.3})
    extra = "" if scoring == "auto" else f"scoring: {scoring}\n"
    pytester.makefile(".yaml", behavior_chat=yes_no_suite("chat-trait", count=3, extra=extra))
    chat = run_suite("--behavior-prompt-format=chat").results[0]
    kinds = _kinds(server.requests)
    if scoring == "auto":
        # The model's method probe (one exact request, as for any trait) found exact
        # scoring: the chat trait is scored by top-k on the chat endpoint instead.
        assert kinds[0] == "echo" and chat["scoring_used"] == "topk"
        kinds = kinds[1:]
    assert kinds == ["chat"] * 3 and chat["prompt_format"] == "chat"
    server.reset_stats()
    text = run_suite("--behavior-prompt-format=text").results[0]
    # Raw text on every path: exact as before (echo), top-k and generate as completions.
    assert set(_kinds(server.requests)) == {"echo" if scoring == "auto" else "text"}
    assert text["prompt_format"] == "text" and text["matches"] == 3
    assert text["scoring_used"] == ("exact" if scoring == "auto" else scoring)
    assert all(not request.body.get("messages") for request in server.requests)


def test_a_baseline_of_another_format_is_refused(
    pytester: pytest.Pytester, run_suite: Any, server: ModelServer
) -> None:
    server.responder = lambda request: Reply(" Yes", choices={" Yes": 0.7, " No": 0.3})
    pytester.makefile(".yaml", behavior_t=yes_no_suite(count=3, extra="scoring: topk\n"))
    run_suite("--behavior-prompt-format=text", "--behavior-save-baseline=base.json")
    saved = json.loads((pytester.path / "base.json").read_text())
    assert saved["results"][0]["prompt_format"] == "text"
    same = run_suite("--behavior-prompt-format=text", "--behavior-baseline=base.json")
    assert same.result.ret == 0
    run = run_suite("--behavior-prompt-format=chat", "--behavior-baseline=base.json")
    run.result.stdout.fnmatch_lines(["*REFUSED*the prompt format differs*"])
    assert run.result.ret == pytest.ExitCode.TESTS_FAILED


def test_scoring_exact_of_a_chat_prompt_needs_a_server_that_renders_the_template(
    pytester: pytest.Pytester, run_suite: Any, server: ModelServer
) -> None:
    """The loopback server has no /apply-template: each case says why, never raw text."""
    pytester.makefile(".yaml", behavior_t=yes_no_suite(count=2, extra="format: chat\n"))
    run = run_suite("--behavior-scoring=exact")
    run.result.stdout.fnmatch_lines(
        [
            "*does not render the model's chat template (neither llama-server's /apply-template nor vLLM's /tokenize: status 404)*"
        ]
    )
    assert run.result.ret == pytest.ExitCode.TESTS_FAILED
    # No completion or chat request: the chat prompt never went out as raw text.
    assert server.request_count == 0
