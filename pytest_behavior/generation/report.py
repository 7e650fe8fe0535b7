"""What happened at every stage: terminal lines, and a Markdown review sheet.

The review sheet is for a person to read before committing the data: the stage
counts, then a sample of kept and of rejected items with the judge's
confidence. The sample is drawn with the run's seed, so the sheet is as
deterministic as the data.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from pytest_behavior.generation.pipeline import GenerationResult, Verdict

SAMPLE_SIZE = 10


def subject(result: GenerationResult) -> str:
    """Who has the trait: the paper's "a person who" for personas, else an AI system."""
    who = "A person who" if result.kind.name == "persona" else "An AI system that"
    return f"{who} {result.settings.description}"


def stage_rows(result: GenerationResult) -> list[tuple[str, str]]:
    counts = result.counts
    mean = "n/a" if counts.mean_confidence is None else f"{counts.mean_confidence:.3f}"
    return [
        ("generated completions", str(counts.completions)),
        ("failed completions", str(counts.failed_completions)),
        ("parsed candidates", str(counts.parsed_candidates)),
        ("unparseable completions", str(counts.unparseable_completions)),
        ("lines dropped (too short/long)", str(counts.dropped_lines)),
        (
            "duplicates removed",
            f"{counts.duplicates} ({counts.exact_duplicates} exact, {counts.near_duplicates} near)",
        ),
        (f"judged ({result.judge_method})", str(counts.judged)),
        (
            "rejected by the judge",
            f"{counts.rejected} ({counts.judge_unparseable} unparseable or failed)",
        ),
        *(
            (
                f"kept {label}",
                f"{counts.kept_per_label[label]} of {counts.accepted_per_label[label]}",
            )
            for label in result.kind.labels
        ),
        ("mean label_confidence", mean),
    ]


def summary_lines(result: GenerationResult) -> list[str]:
    rows = stage_rows(result)
    width = max(len(name) for name, _ in rows)
    lines = [f"  {name:<{width}}  {value}" for name, value in rows]
    accepted = result.counts.accepted_per_label
    if result.counts.kept == 0 and any(accepted.values()):
        shown = ", ".join(f"{count} {label}" for label, count in accepted.items())
        lines.append(
            f"  no items kept: the judge accepted {shown}; labels are kept balanced, so "
            "none is kept (a judge that always picks one answer is biased, not informative); "
            "read the review sheet, and try more --completions or a stronger --judge"
        )
    elif result.counts.kept == 0:
        lines.append(
            "  no items kept: the judge accepted none for one label at least; read the "
            "review sheet, and try more --completions or a stronger --generator/--judge"
        )
    lines.append(f"  requests sent: {result.requests_sent} (the rest came from the cache)")
    return lines


def _sample(verdicts: Sequence[Verdict], seed: int) -> list[Verdict]:
    if len(verdicts) <= SAMPLE_SIZE:
        return list(verdicts)
    picked = random.Random(seed).sample(range(len(verdicts)), SAMPLE_SIZE)
    return [verdicts[index] for index in sorted(picked)]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _item(verdict: Verdict) -> str:
    candidate = verdict.candidate
    if candidate.answers is None:
        return _cell(candidate.statement)
    matching, not_matching = candidate.answers
    return (
        f"{_cell(candidate.statement)}<br>with the behavior: {_cell(matching)}"
        f"<br>without: {_cell(not_matching)}"
    )


def _table(verdicts: Sequence[Verdict], noun: str) -> list[str]:
    if not verdicts:
        return ["(none)", ""]
    lines = [f"| label | judged | confidence | {noun} |", "|---|---|---|---|"]
    for verdict in verdicts:
        confidence = "n/a" if verdict.confidence is None else f"{verdict.confidence:.3f}"
        judged = verdict.judged_label or _cell(verdict.note or "unparseable")
        lines.append(f"| {verdict.candidate.label} | {judged} | {confidence} | {_item(verdict)} |")
    return [*lines, ""]


def review_sheet(result: GenerationResult, jsonl_name: str) -> str:
    settings = result.settings
    noun = "statement"
    if result.kind.name != "persona":
        noun = "question (label: the matching answer's place)"
    lines = [
        f"# Review: {jsonl_name}",
        "",
        f"Trait: {subject(result)}.",
        *(
            [f"Prompts from {result.prompts_from} (pytest_behavior_generation_prompts)."]
            if result.prompts_from
            else []
        ),
        f"Generator `{settings.generator}`, judge `{settings.judge}` "
        f"(scoring: {result.judge_method}), seed {settings.seed}.",
        "",
        "## Stages",
        "",
        "| stage | count |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in stage_rows(result)),
        "",
    ]
    if result.judge_method != "exact":
        lines += [
            "The judge gave no prompt log-probabilities, so it was read from generated "
            "answers: label_confidence is a top-k estimate, or 1.0 where only text was given.",
            "",
        ]
    lines += [
        f"## Kept (a sample of {min(SAMPLE_SIZE, len(result.kept))} of {len(result.kept)})",
        "",
        *_table(_sample(result.kept, settings.seed), noun),
        f"## Rejected (a sample of {min(SAMPLE_SIZE, len(result.rejected))} "
        f"of {len(result.rejected)})",
        "",
        *_table(_sample(result.rejected, settings.seed), noun),
    ]
    return "\n".join(lines)
