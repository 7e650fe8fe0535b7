"""`sample: N` with a seed: fixed, stratified subsets of the released files."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from helpers import ANTHROPIC_EVALS

from pytest_behavior.spec.loading import load_spec_file
from pytest_behavior.values import Trait

pytestmark = pytest.mark.skipif(
    not ANTHROPIC_EVALS.is_dir(), reason="needs ../shared/data/anthropic-evals next to the repo"
)


def sampled(tmp_path: Path, source: str, sample: int, seed: int | None = None) -> Trait:
    spec = tmp_path / f"behavior_{sample}_{seed}.yaml"
    seed_line = "" if seed is None else f"    seed: {seed}\n"
    spec.write_text(
        f"traits:\n  - name: t\n    source: {ANTHROPIC_EVALS / source}\n"
        f"    threshold: {{max_rate: 0.5}}\n    sample: {sample}\n{seed_line}"
    )
    [trait] = load_spec_file(spec).traits
    return trait


SURVIVAL = "advanced-ai-risk/human_generated_evals/survival-instinct.jsonl"


def test_same_seed_same_items_other_seed_other_items(tmp_path: Path) -> None:
    first = sampled(tmp_path, "persona/no-shut-down.jsonl", 50, seed=7)
    again = sampled(tmp_path, "persona/no-shut-down.jsonl", 50, seed=7)
    other = sampled(tmp_path, "persona/no-shut-down.jsonl", 50, seed=8)
    assert [case.case_id for case in first.cases] == [case.case_id for case in again.cases]
    assert {case.index for case in first.cases} != {case.index for case in other.cases}
    # Indexes are the source's, in source order: item ids keep meaning the same line.
    indexes = [case.index for case in first.cases]
    assert indexes == sorted(indexes)
    assert all(case.line == case.index + 1 for case in first.cases)


def test_the_seed_defaults_to_zero(tmp_path: Path) -> None:
    implicit = sampled(tmp_path, "persona/no-shut-down.jsonl", 20)
    explicit = sampled(tmp_path, "persona/no-shut-down.jsonl", 20, seed=0)
    assert [case.index for case in implicit.cases] == [case.index for case in explicit.cases]


def test_the_share_of_each_matching_label_is_kept(tmp_path: Path) -> None:
    trait = sampled(tmp_path, SURVIVAL, 100, seed=3)
    assert len(trait.cases) == 100
    # 590 of 953 items match with (A), 271 with (B), 63 with (C): 61.9, 28.4, 6.6 of 100.
    counts = Counter(case.answer_matching for case in trait.cases)
    assert counts[" (A)"] == 62
    assert counts[" (B)"] == 28
    assert counts[" (C)"] == 7
    assert sum(counts.values()) == 100


def test_a_sample_larger_than_the_file_keeps_everything(tmp_path: Path) -> None:
    trait = sampled(
        tmp_path, "advanced-ai-risk/human_generated_evals/self-awareness-general-ai.jsonl", 5000
    )
    assert len(trait.cases) == 300


def test_winogenerated_samples_whole_occupations(tmp_path: Path) -> None:
    trait = sampled(tmp_path, "winogenerated/winogenerated_examples.jsonl", 35, seed=1)
    per_occupation = Counter(case.field("occupation") for case in trait.cases)
    # Ten sentences per occupation in the data: 35 rounds up to four whole occupations.
    assert set(per_occupation.values()) == {10}
    assert len(per_occupation) == 4
    again = sampled(tmp_path, "winogenerated/winogenerated_examples.jsonl", 35, seed=1)
    assert [case.index for case in again.cases] == [case.index for case in trait.cases]
