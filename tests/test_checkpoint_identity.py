"""Checkpoint identity: what the endpoint says about the model, and the fingerprint probe."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from typing import Any

import httpx
import pytest
from helpers import yes_no_suite

from pytest_behavior.fetch.checkpoint import (
    PROBE_HEADER,
    TOLERANCE,
    CheckpointRecord,
    Fingerprint,
    ProbeFailed,
    describe,
    description_of,
    probe,
    same_checkpoint,
)
from pytest_behavior.testing import ModelServer
from pytest_behavior.testing import checkpoints as test_checkpoints

# -- what a /v1/models entry and /props say ---------------------------------------------

LLAMA_ENTRY = {
    "id": "smollm2",
    "aliases": ["smollm2"],
    "tags": [],
    "object": "model",
    "created": 1765000000,
    "owned_by": "llamacpp",
    "meta": {"n_vocab": 49152, "n_ctx": 4096, "n_params": 134515008, "size": 98000000},
}


def test_llama_cpp_meta_is_part_of_the_revision_but_not_the_time_or_context() -> None:
    smol = description_of(LLAMA_ENTRY, None)
    later = description_of({**LLAMA_ENTRY, "created": 1765009999}, None)
    more_slots = description_of(
        {**LLAMA_ENTRY, "meta": {**LLAMA_ENTRY["meta"], "n_ctx": 1024}}, None
    )
    gemma = description_of(
        {**LLAMA_ENTRY, "meta": {**LLAMA_ENTRY["meta"], "n_vocab": 262144, "n_params": 268098176}},
        None,
    )
    assert smol.revision is not None
    assert smol.revision == later.revision == more_slots.revision
    assert gemma.revision != smol.revision


def test_props_name_the_model_file_and_the_serving_build() -> None:
    props = {
        "model_path": "/w/SmolLM2-135M-Instruct.Q4_1.gguf",
        "chat_template": "{{ messages }}",
        "build_info": "b11434-515e855",
        "total_slots": 4,
    }
    described = description_of(LLAMA_ENTRY, props)
    assert described.label == "/w/SmolLM2-135M-Instruct.Q4_1.gguf"
    assert described.revision is not None and described.revision.startswith(described.label)
    assert described.stack.server == "b11434-515e855"
    # The number of slots is a server setting, not the checkpoint.
    assert description_of(LLAMA_ENTRY, {**props, "total_slots": 1}).revision == described.revision
    other = description_of(LLAMA_ENTRY, {**props, "chat_template": "{{ other }}"})
    assert other.revision != described.revision


def test_a_vllm_root_alone_stays_the_revision_it_was() -> None:
    entry = {
        "id": "m",
        "object": "model",
        "created": 5,
        "root": "/models/ckpt-1200",
        "parent": None,
    }
    entry["permission"] = [{"id": "modelperm-123", "created": 5}]
    entry["max_model_len"] = 4096
    assert description_of(entry, None).revision == "/models/ckpt-1200"
    assert description_of({"id": "m", "object": "model"}, None).revision is None


# -- fingerprints -------------------------------------------------------------------------


def fingerprint(*pairs: tuple[str, float]) -> Fingerprint:
    return Fingerprint(pairs[0][0], tuple(pairs))


def test_jitter_within_the_tolerance_is_the_same_checkpoint() -> None:
    stored = fingerprint(("Blue", -0.5), ("Red", -1.5), ("Green", -2.0))
    jittered = fingerprint(("Blue", -0.52), ("Red", -1.43), ("Green", -2.1))
    assert same_checkpoint(stored, jittered)
    moved = fingerprint(("Blue", -0.5), ("Red", -1.5 + 2 * TOLERANCE), ("Green", -2.0))
    assert not same_checkpoint(stored, moved)
    other_model = fingerprint(("The", -0.1), ("A", -2.5), ("Blue", -3.0))
    assert stored.distance(other_model) == math.inf


def test_a_record_survives_the_cache_as_an_answer() -> None:
    record = CheckpointRecord("/w/a.gguf [abc]", fingerprint(("Blue", -0.5), ("Red", -1.5)))
    assert CheckpointRecord.from_answer(record.to_answer()) == record
    assert CheckpointRecord.from_answer(None) is None


def test_the_identity_check_imports_neither_litellm_nor_httpx() -> None:
    code = (
        "import sys, pytest_behavior.fetch.checkpoint_check as c; "
        "print(sorted(m for m in ('litellm', 'httpx', 'openai') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- against the loopback server ------------------------------------------------------------


def test_the_test_server_changes_the_fingerprint_and_not_the_listing() -> None:
    with ModelServer(served_models=("m",)) as server:
        before = httpx.get(server.api_base + "/models").json()
        first, _ = probe(server.api_base, "openai/m")
        assert first == probe(server.api_base, "openai/m")[0]  # no jitter: identical
        server.checkpoint = "checkpoint-2"
        second, stack = probe(server.api_base, "openai/m")
        after = httpx.get(server.api_base + "/models").json()
        assert server.probe_count == 3 and server.request_count == 0
    assert [e["id"] for e in before["data"]] == [e["id"] for e in after["data"]] == ["m"]
    assert describe_entries(before) == describe_entries(after)
    assert not same_checkpoint(first, second)
    assert stack.system_fingerprint == "fp_pytest_behavior"


def describe_entries(listing: dict[str, Any]) -> list[Any]:
    return [description_of(entry, None) for entry in listing["data"]]


def test_jitter_moves_log_probabilities_within_its_bound() -> None:
    rng = random.Random(1)
    calm = dict(test_checkpoints.probe_logprobs("c", 0.0, rng))
    for _ in range(20):
        moved = dict(test_checkpoints.probe_logprobs("c", 0.1, rng))
        assert max(abs(moved[t] - calm[t]) for t in calm) <= 0.1


def test_the_probe_header_is_the_one_the_test_server_knows() -> None:
    assert PROBE_HEADER.lower() == test_checkpoints.PROBE_HEADER


def test_a_failing_endpoint_is_a_failed_probe() -> None:
    with ModelServer() as server:
        api_base = server.api_base
        with pytest.raises(ProbeFailed, match="HTTP 404"):
            probe(server.url + "/nowhere", "openai/m")
    with pytest.raises(ProbeFailed, match="no answer"):
        probe(api_base, "openai/m", timeout=2)
    assert describe(api_base, "openai/m", timeout=2).revision is None


# -- through the plugin -------------------------------------------------------------------


def test_a_checkpoint_swapped_under_the_same_name_is_asked_afresh_and_said(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=5))
    run_suite("--behavior-scoring=topk")
    assert (server.request_count, server.probe_count) == (5, 1)
    server.reset_stats()
    same = run_suite("--behavior-scoring=topk")
    assert (server.request_count, server.probe_count) == (0, 1)  # one request per model
    same.result.stdout.no_fnmatch_line("*checkpoint behind*")
    server.checkpoint = "retrained-over-the-old-file"
    server.reset_stats()
    swapped = run_suite("--behavior-scoring=topk")
    assert (server.request_count, server.probe_count) == (5, 1)
    swapped.result.stdout.fnmatch_lines(
        [
            "behavior: the checkpoint behind openai/test-model at * changed (same name, same "
            "listing; *): its answers are asked afresh"
        ]
    )
    report = json.loads(swapped.report_path.read_text())
    assert report["results"][0]["n"] == 5


def test_temperature_zero_jitter_is_not_a_new_checkpoint_but_a_large_move_is(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=4))
    server.jitter = TOLERANCE / 4  # two answers differ by at most half the tolerance
    run_suite("--behavior-scoring=topk")
    for _ in range(3):
        server.reset_stats()
        again = run_suite("--behavior-scoring=topk")
        assert server.request_count == 0
        again.result.stdout.no_fnmatch_line("*checkpoint behind*")
    server.jitter = 4 * TOLERANCE  # far beyond: the same as another checkpoint
    server.reset_stats()
    moved = run_suite("--behavior-scoring=topk")
    assert server.request_count == 4
    moved.result.stdout.fnmatch_lines(["*checkpoint behind openai/test-model*changed*"])


def test_readonly_sends_no_probe_and_says_the_identity_was_not_checked(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=3))
    run_suite("--behavior-scoring=topk")
    server.checkpoint = "swapped"  # unseen: readonly does not look
    server.reset_stats()
    run = run_suite("--behavior-scoring=topk", "--behavior-cache-mode=readonly")
    assert (server.request_count, server.probe_count) == (0, 0)
    run.result.stdout.fnmatch_lines(
        ["behavior: the checkpoint behind openai/test-model was not checked*readonly*"]
    )
    assert run.results[0]["n"] == 3  # the cached answers, as they are
