"""Spec files (YAML) -> typed :class:`SpecFile`, with errors that name file, line and fix.

Schema (see docs/specs.md)::

    defaults:            # optional; any trait key below except name/cases/source
      threshold: {max_rate: 0.3}
    traits:
      - name: power-seeking
        description: ...
        threshold: {max_rate: 0.30}      # and/or min_rate
        prompt: "Human: {question}\\n\\nAssistant:"
        continuation: " I believe the best answer is"   # default: the family's
        scoring: auto                     # auto | logprob | generate
        source: data/power.jsonl          # or a glob: one trait per file
        family: persona                   # default: detected from the source
        sample: 200                       # optional stratified subset
        seed: 0
        regression_tolerance: 0.02
        min_scored: 10                    # fewer scored cases: verdict "error"
        shuffle_choices: false            # re-letter multiple-choice options per case
        choices: listed                   # listed (every option) | labelled (answer fields)
        format: chat                      # chat (messages) | text (raw completion)
        cases: [...]                      # inline cases, same field names
"""

from __future__ import annotations

import dataclasses
import difflib
import glob
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_behavior.errors import SpecError, brief, shorten
from pytest_behavior.spec.families import FAMILIES, detect_family
from pytest_behavior.spec.families import family as family_record
from pytest_behavior.spec.shuffling import shuffle_case
from pytest_behavior.spec.sources import first_row, read_jsonl_cases, stratified_sample
from pytest_behavior.spec.text_files import MAX_SOURCE_BYTES, MAX_SPEC_BYTES, read_text_file
from pytest_behavior.spec.yaml_lines import LineDict, LineList, load_yaml
from pytest_behavior.values import (
    CHOICE_SETS,
    PROMPT_FORMATS,
    SCORING_MODES,
    Case,
    SpecFile,
    Threshold,
    Trait,
)

TOP_KEYS = ("version", "defaults", "traits")
TRAIT_KEYS = (
    "name",
    "description",
    "threshold",
    "prompt",
    "continuation",
    "scoring",
    "source",
    "family",
    "cases",
    "sample",
    "seed",
    "regression_tolerance",
    "min_scored",
    "shuffle_choices",
    "choices",
    "format",
    "min_cases",
    "max_cases",
    "batch_size",
    "samples",
    "temperature",
)
DEFAULT_KEYS = tuple(key for key in TRAIT_KEYS if key not in ("name", "cases", "source"))
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]*$")
_THRESHOLD_HINT = "write threshold: {max_rate: 0.3} (fail above 30%) or {min_rate: 0.8}"
_THRESHOLD_KEYS = ("max_rate", "min_rate", "max_correlation")
# Seeds and sample sizes fit a signed 64-bit integer (what other tools can store).
_WHOLE_LIMIT = 2**63


def load_spec_file(path: Path, display: str | None = None) -> SpecFile:
    """Read and validate one spec file; raises :class:`SpecError`."""
    shown = display or str(path)
    try:
        text = read_text_file(path, shown, max_bytes=MAX_SPEC_BYTES, what="spec file")
    except OSError as exc:
        raise SpecError(shown, None, f"cannot read spec file: {exc.strerror or exc}") from None
    document = load_yaml(text, shown)
    return parse_spec(document, path=path, display=shown)


def parse_spec(document: Any, *, path: Path, display: str) -> SpecFile:
    if not isinstance(document, LineDict):
        raise SpecError(
            display, 1, "a spec file must be a mapping with a 'traits' list", "start with: traits:"
        )
    _reject_unknown(document, TOP_KEYS, display, "at the top level")
    defaults = document.get("defaults", LineDict(document.line))
    if not isinstance(defaults, LineDict):
        raise SpecError(display, document.line_of("defaults"), "defaults must be a mapping")
    _reject_unknown(defaults, DEFAULT_KEYS, display, "in defaults")
    entries = document.get("traits")
    if not isinstance(entries, LineList) or not entries:
        raise SpecError(
            display,
            document.line_of("traits"),
            "'traits' must be a non-empty list",
            "write traits:\n    - name: my-trait\n      threshold: {max_rate: 0.3}\n"
            "      cases: [...]",
        )
    traits: list[Trait] = []
    seen: dict[str, int] = {}
    for position, entry in enumerate(entries):
        line = entries.line_of(position)
        if not isinstance(entry, LineDict):
            raise SpecError(
                display, line, "each trait must be a mapping", "start it with '- name: ...'"
            )
        _reject_unknown(entry, TRAIT_KEYS, display, "in a trait")
        for trait in _parse_trait(entry, defaults, path=path, display=display):
            if trait.name in seen:
                raise SpecError(
                    display,
                    trait.line,
                    f"trait name {brief(trait.name)} is used twice",
                    f"first defined on line {seen[trait.name]}; names must be unique per file",
                )
            seen[trait.name] = trait.line
            traits.append(trait)
    return SpecFile(path=path, traits=tuple(traits))


def _reject_unknown(mapping: LineDict, allowed: tuple[str, ...], display: str, where: str) -> None:
    for key in mapping:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(allowed)}"
            raise SpecError(
                display, mapping.line_of(key), f"unknown key {brief(key)} {where}", hint
            )


def _setting(entry: LineDict, defaults: LineDict, key: str) -> tuple[Any, int]:
    if key in entry:
        return entry[key], entry.line_of(key)
    return defaults.get(key), defaults.line_of(key)


def _parse_trait(
    entry: LineDict, defaults: LineDict, *, path: Path, display: str
) -> Iterator[Trait]:
    name = entry.get("name")
    source = entry.get("source")
    if name is None and not (isinstance(source, str) and glob.has_magic(source)):
        raise SpecError(display, entry.line, "trait has no name", "add name: my-trait")
    if name is not None and (not isinstance(name, str) or not NAME_PATTERN.match(name)):
        raise SpecError(
            display,
            entry.line_of("name"),
            f"invalid trait name {brief(name)}",
            "use letters, digits, '-', '_', '.' or '/', e.g. name: power-seeking",
        )
    common = _common_settings(entry, defaults, display)
    inline = _inline_rows(entry, display)
    if source is None:
        if not inline:
            raise SpecError(
                display,
                entry.line,
                f"trait {brief(name)} has no cases",
                "add source: file.jsonl or cases:",
            )
        assert isinstance(name, str)
        family = common["family"] or detect_family(None, inline[0][0])
        cases = _inline_cases(inline, family, display)
        yield _make_trait(name, entry, common, cases, None, display, family)
        return
    if not isinstance(source, str) or not source.strip() or "\x00" in source:
        raise SpecError(display, entry.line_of("source"), "source must be a path or glob")
    for file_path, trait_name in _expand_source(
        source, name, path, display, entry.line_of("source")
    ):
        text = _read_source(file_path, display, entry.line_of("source"), source)
        family = common["family"] or detect_family(file_path, first_row(text))
        cases = read_jsonl_cases(
            text, source=os.path.relpath(file_path), reader=family_record(family).read_case
        )
        cases += [
            dataclasses.replace(case, index=len(cases) + offset)
            for offset, case in enumerate(_inline_cases(inline, family, display))
        ]
        if not cases:
            raise SpecError(
                display,
                entry.line_of("source"),
                f"source {os.path.relpath(file_path, path.parent)} holds no cases",
                "point source at a JSONL file with one case per line",
            )
        yield _make_trait(
            trait_name, entry, common, cases, os.path.relpath(file_path), display, family, file_path
        )


def _make_trait(
    name: str,
    entry: LineDict,
    common: dict[str, Any],
    cases: list[Case],
    source: str | None,
    display: str,
    family: str,
    file_path: Path | None = None,
) -> Trait:
    settings = dict(common)
    del settings["family"]
    record = family_record(family)
    continuation = settings.pop("continuation")
    sample = settings["sample"]
    if sample is not None:
        draw = record.sample or stratified_sample
        cases = draw(cases, sample, settings["seed"])
    if settings["shuffle_choices"]:
        # After sampling, so shuffling never changes which cases are drawn.
        cases = _shuffled(cases, settings["seed"], name, entry, display)
    if settings["threshold"].max_correlation is not None and not record.correlates:
        correlating = ", ".join(name for name, other in FAMILIES.items() if other.correlates)
        raise SpecError(
            display,
            entry.line_of("threshold"),
            f"max_correlation applies to {correlating} traits; {brief(name)} is {family}",
            "bound the matching rate with max_rate or min_rate instead",
        )
    if settings["adaptive"] and settings["threshold"].max_correlation is not None:
        raise SpecError(
            display,
            entry.line_of("sample") or entry.line,
            f"sample: adaptive decides a matching rate; {brief(name)} is gated on "
            "max_correlation, which needs every occupation",
            "leave out sample: adaptive (or write sample: 200 for a fixed subset)",
        )
    if continuation is None:
        # A trait's own prompt is taken exactly as written.
        continuation = (
            "" if settings["prompt"] is not None else record.continuation(file_path, cases)
        )
    choices = settings.pop("choices")
    return Trait(
        name=name,
        cases=tuple(cases),
        spec_path=display,
        line=entry.line,
        source=source,
        family=family,
        continuation=continuation,
        **settings,
    ).with_choices(choices)


def _shuffled(cases: list[Case], seed: int, name: str, entry: LineDict, display: str) -> list[Case]:
    shuffled = []
    for case in cases:
        relettered = shuffle_case(case, seed)
        if relettered is None:
            raise SpecError(
                display,
                entry.line_of("shuffle_choices"),
                f"trait {name!r} sets shuffle_choices, but case {case.index} "
                f"({case.source}:{case.line}) lists no lettered options its answers name",
                "shuffle_choices re-letters questions that list ' (A) ...' / ' (B) ...' lines "
                'with answers like " (A)"; remove it (or set shuffle_choices: false) here',
            )
        shuffled.append(relettered)
    return shuffled


def _common_settings(entry: LineDict, defaults: LineDict, display: str) -> dict[str, Any]:
    description, _ = _setting(entry, defaults, "description")
    threshold = _parse_threshold(
        *_setting(entry, defaults, "threshold"), display=display, trait=entry
    )
    prompt, prompt_line = _setting(entry, defaults, "prompt")
    if prompt is not None and (not isinstance(prompt, str) or "{question}" not in prompt):
        raise SpecError(
            display,
            prompt_line,
            "prompt must be text containing {question}",
            'write prompt: "\\n\\nHuman: {question}\\n\\nAssistant:"',
        )
    scoring, scoring_line = _setting(entry, defaults, "scoring")
    if scoring is not None and scoring not in SCORING_MODES:
        raise SpecError(
            display,
            scoring_line,
            f"unknown scoring {brief(scoring)}",
            f"use one of {', '.join(SCORING_MODES)}",
        )
    sample, sample_line = _setting(entry, defaults, "sample")
    adaptive = sample == "adaptive"
    if adaptive:
        sample = None
    elif sample is not None and (
        isinstance(sample, bool) or not isinstance(sample, int) or not 1 <= sample < _WHOLE_LIMIT
    ):
        raise SpecError(
            display,
            sample_line,
            "sample must be a whole number >= 1, or adaptive",
            "write sample: 200 (a fixed subset) or sample: adaptive (ask until decided)",
        )
    adaptive_sizes = {
        key: _whole_setting(entry, defaults, key, display)
        for key in ("min_cases", "max_cases", "batch_size", "samples")
    }
    temperature, temperature_line = _setting(entry, defaults, "temperature")
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not 0 <= temperature <= 5
    ):
        raise SpecError(
            display,
            temperature_line,
            "temperature must be a number from 0 to 5",
            "write temperature: 1.0 (with samples: 5)",
        )
    if adaptive and (adaptive_sizes["samples"] or 1) > 1:
        raise SpecError(
            display,
            entry.line_of("samples") or sample_line,
            "sample: adaptive asks each case once; samples: K asks each case K times",
            "use one of them (the sequential intervals assume one answer per case)",
        )
    seed, seed_line = _setting(entry, defaults, "seed")
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < _WHOLE_LIMIT
    ):
        raise SpecError(
            display, seed_line, "seed must be a whole number from 0 to 2**63 - 1", "write seed: 0"
        )
    tolerance, tolerance_line = _setting(entry, defaults, "regression_tolerance")
    if tolerance is not None and (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, int | float)
        or not 0 <= tolerance < 1
    ):
        raise SpecError(
            display,
            tolerance_line,
            "regression_tolerance must be a number in [0, 1)",
            "write regression_tolerance: 0.02 (two points of matching rate)",
        )
    if description is not None and not isinstance(description, str):
        raise SpecError(display, entry.line_of("description"), "description must be text")
    family, family_line = _setting(entry, defaults, "family")
    if family is not None and (not isinstance(family, str) or family not in FAMILIES):
        raise SpecError(
            display,
            family_line,
            f"unknown family {brief(family)}",
            f"use one of {', '.join(FAMILIES)}, or leave it out to detect it from the source",
        )
    continuation, continuation_line = _setting(entry, defaults, "continuation")
    if continuation is not None and not isinstance(continuation, str):
        raise SpecError(
            display,
            continuation_line,
            "continuation must be text",
            'write continuation: " I believe the best answer is" (or "" for none)',
        )
    min_scored, min_scored_line = _setting(entry, defaults, "min_scored")
    if min_scored is not None and (
        isinstance(min_scored, bool) or not isinstance(min_scored, int) or min_scored < 1
    ):
        raise SpecError(
            display,
            min_scored_line,
            "min_scored must be a whole number >= 1",
            "write min_scored: 10 (fewer scored cases make the verdict an error)",
        )
    shuffle, shuffle_line = _setting(entry, defaults, "shuffle_choices")
    if shuffle is not None and not isinstance(shuffle, bool):
        raise SpecError(
            display,
            shuffle_line,
            "shuffle_choices must be true or false",
            "write shuffle_choices: true",
        )
    choices, choices_line = _setting(entry, defaults, "choices")
    if choices is not None and choices not in CHOICE_SETS:
        raise SpecError(
            display,
            choices_line,
            f"choices must be listed or labelled, got {brief(choices)}",
            "write choices: listed (every option the question lists competes) or "
            "choices: labelled (only the answer fields', as lm-evaluation-harness)",
        )
    prompt_format, format_line = _setting(entry, defaults, "format")
    if prompt_format is not None and prompt_format not in PROMPT_FORMATS:
        raise SpecError(
            display,
            format_line,
            f"format must be chat or text, got {brief(prompt_format)}",
            "write format: chat (messages in the model's chat template) or "
            "format: text (the prompt as raw text, a completion)",
        )
    return {
        "prompt_format": prompt_format,
        "choices": choices or "listed",
        "adaptive": adaptive,
        "min_cases": adaptive_sizes["min_cases"] or 20,
        "max_cases": adaptive_sizes["max_cases"],
        "batch_size": adaptive_sizes["batch_size"] or 20,
        "samples": adaptive_sizes["samples"] or 1,
        "temperature": None if temperature is None else float(temperature),
        "min_scored": min_scored,
        "shuffle_choices": bool(shuffle),
        "family": family,
        "continuation": continuation,
        "description": description or "",
        "threshold": threshold,
        "prompt": prompt,
        "scoring": scoring or "auto",
        "sample": sample,
        "seed": seed or 0,
        "regression_tolerance": None if tolerance is None else float(tolerance),
    }


def _whole_setting(entry: LineDict, defaults: LineDict, key: str, display: str) -> int | None:
    """An adaptive trait's case count (min_cases, max_cases, batch_size): a whole number >= 1."""
    value, line = _setting(entry, defaults, key)
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < _WHOLE_LIMIT
    ):
        raise SpecError(
            display,
            line,
            f"{key} must be a whole number >= 1",
            f"write {key}: {_ADAPTIVE_EXAMPLES[key]}"
            + ("" if key == "samples" else " (with sample: adaptive)"),
        )
    return value


_ADAPTIVE_EXAMPLES = {"min_cases": 20, "max_cases": 1000, "batch_size": 20, "samples": 5}


def _parse_threshold(value: Any, line: int, *, display: str, trait: LineDict) -> Threshold:
    if value is None:
        raise SpecError(display, trait.line, "trait has no threshold", _THRESHOLD_HINT)
    if not isinstance(value, LineDict):
        raise SpecError(display, line, "threshold must be a mapping", _THRESHOLD_HINT)
    _reject_unknown(value, _THRESHOLD_KEYS, display, "in threshold")
    bounds: dict[str, float] = {}
    for key in _THRESHOLD_KEYS:
        if key not in value:
            continue
        bound = value[key]
        low = -1 if key == "max_correlation" else 0
        if isinstance(bound, bool) or not isinstance(bound, int | float) or not low <= bound <= 1:
            raise SpecError(
                display,
                value.line_of(key),
                f"{key} must be a number between {low} and 1",
                _THRESHOLD_HINT,
            )
        bounds[key] = float(bound)
    if not bounds:
        raise SpecError(display, line, "threshold needs max_rate or min_rate", _THRESHOLD_HINT)
    if "max_rate" in bounds and "min_rate" in bounds and bounds["min_rate"] > bounds["max_rate"]:
        raise SpecError(display, line, "min_rate is above max_rate", "make min_rate <= max_rate")
    return Threshold(
        max_rate=bounds.get("max_rate"),
        min_rate=bounds.get("min_rate"),
        max_correlation=bounds.get("max_correlation"),
    )


def _inline_rows(entry: LineDict, display: str) -> list[tuple[LineDict, int]]:
    raw = entry.get("cases")
    if raw is None:
        return []
    if not isinstance(raw, LineList):
        raise SpecError(display, entry.line_of("cases"), "cases must be a list of mappings")
    rows = []
    for position, row in enumerate(raw):
        line = raw.line_of(position)
        if not isinstance(row, LineDict):
            raise SpecError(
                display, line, "each case must be a mapping", "start it with '- question: ...'"
            )
        rows.append((row, line))
    return rows


def _inline_cases(rows: list[tuple[LineDict, int]], family: str, display: str) -> list[Case]:
    reader = family_record(family).read_case
    return [
        reader(row, index=position, source=display, line=line)
        for position, (row, line) in enumerate(rows)
    ]


def _expand_source(
    source: str, name: str | None, spec_path: Path, display: str, line: int
) -> list[tuple[Path, str]]:
    base = spec_path.parent
    pattern = source if os.path.isabs(source) else str(base / source)
    if not glob.has_magic(source):
        return [(Path(pattern), name or Path(source).stem)]
    matches = sorted(Path(match) for match in glob.glob(pattern, recursive=True))
    if not matches:
        raise SpecError(
            display,
            line,
            f"source glob {brief(source)} matches no file",
            f"looked in {base.resolve()}",
        )
    return [(match, f"{name}/{match.stem}" if name else match.stem) for match in matches]


def _read_source(file_path: Path, display: str, line: int, source: str) -> str:
    if file_path.suffix.lower() != ".jsonl":
        raise SpecError(
            display,
            line,
            f"source {brief(source)} is not a .jsonl file",
            "point source at JSONL in the anthropics/evals format",
        )
    try:
        # Content problems (size, binary, encoding) name the source file itself.
        text = read_text_file(
            file_path, os.path.relpath(file_path), max_bytes=MAX_SOURCE_BYTES, what="source file"
        )
    except FileNotFoundError:
        raise SpecError(
            display,
            line,
            f"source file not found: {shorten(source)}",
            f"paths are relative to the spec file; looked for {file_path.resolve()}",
        ) from None
    except OSError as exc:
        raise SpecError(
            display, line, f"cannot read source {shorten(source)}: {exc.strerror or exc}"
        ) from None
    return text
