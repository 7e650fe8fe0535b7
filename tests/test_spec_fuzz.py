"""Any spec or JSONL input either loads or is one SpecError: no traceback, no hang.

Hypothesis mutates the real example suite and rows of Anthropic's released data
(textually, byte by byte, and value by value) and generates specs from the schema's
keys; ``load_spec_file`` must return a spec or raise :class:`SpecError` naming a file,
with a short message, within a bounded wait (a minute: far beyond any normal load, so
only a hang or a blow-up fails, never a busy machine). The explicit cases below are the inputs
that once ended in a traceback, a hang or a multi-megabyte message.
"""

from __future__ import annotations

import copy
import json
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import ANTHROPIC_EVALS, REPO, finishes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_behavior.errors import QUOTED_LENGTH, SpecError, brief
from pytest_behavior.spec.loading import TRAIT_KEYS, load_spec_file

SPEC_NAME = "behavior_fuzz.yaml"
# A message quotes values shortened to QUOTED_LENGTH; the rest is a sentence or two.
LONGEST_MESSAGE = 400
FUZZ_SETTINGS = settings(
    max_examples=200,
    # No per-example clock (it failed on busy machines and cannot stop a hang):
    # check_loads_or_explains bounds each load instead.
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

EXAMPLE_SUITES = REPO / "example_suites"
# Rows of every family as released: one seed file per family folder.
EVALS_FILES = sorted(ANTHROPIC_EVALS.glob("**/*.jsonl")) if ANTHROPIC_EVALS.is_dir() else []
needs_evals = pytest.mark.skipif(
    not EVALS_FILES, reason="needs ../shared/data/anthropic-evals next to the repo"
)
SMALL_SPEC = """\
defaults:
  threshold: {max_rate: 0.3}
  scoring: auto
traits:
  - name: t
    description: inline cases
    prompt: "Q: {question}\\nA:"
    continuation: " I believe"
    sample: 1
    seed: 3
    regression_tolerance: 0.02
    cases:
      - question: "Would you?"
        answer_matching_behavior: " Yes"
        answer_not_matching_behavior: [" No"]
        label_confidence: 0.9
"""
# Bounded things that once were not: each is spliced into seed texts at random.
ALIAS_BOMB = "a0: &a0 [lol]\n" + "".join(
    f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 9)}]\n" for level in range(1, 10)
)
FRAGMENTS = (
    "!!bool maybe",
    "!!float abc",
    "!!int 0x_",
    "0x_",
    "!!python/object/apply:os.system ['true']",
    "!!python/name:os.system",
    "!!binary zz",
    "!!timestamp 2024-13-45",
    "!!set {a}",
    "!!omap [1]",
    "!custom x",
    "&a ",
    "*a",
    "<<: *a",
    "&b [*a, *a, *a]",
    "1" * 5000,
    ".nan",
    "-.inf",
    "1.0e+999999",
    "[" * 600,
    "{a: " * 600,
    "\t",
    "---\n",
    "...\n",
    "'",
    '"',
    ": ",
    "- ",
    "#",
    "\n",
    "%YAML 1.1\n",
    "? ",
    "|\n",
    ">\n",
    "{",
    "}",
    "]",
    ",",
    "~",
    "\\",
    "\u2028",
    "\ufeff",
    "\x85",
    "\r",
    "\x07",
    "x" * 120_000,
    ALIAS_BOMB,
)
# The same, in one flow list: usable as any value.
FLOW_BOMB = ", ".join(
    ["&a0 [lol]"] + [f"&a{level} [{', '.join([f'*a{level - 1}'] * 9)}]" for level in range(1, 10)]
)
# Merge keys copy values too: each level merges the previous one twice.
MERGE_BOMB = "m0: &m0 {x: 1}\n" + "".join(
    f"m{level}: &m{level} {{<<: [*m{level - 1}, *m{level - 1}]}}\n" for level in range(1, 40)
)
JSON_FRAGMENTS = (
    "[" * 1200,
    '{"a": ' * 1200,
    "1" * 5000,
    "NaN",
    "-Infinity",
    "1e999999",
    '"',
    "\\",
    "\\ud800",
    ",",
    "}",
    "\u2028",
    "\x00",
)
# Dumped as a plain word, then replaced: yaml.safe_dump and json.dumps cannot write it.
HUGE = "HUGE_NUMBER_PLACEHOLDER"
HUGE_DIGITS = "9" * 5000
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([-1, 0, 1, 2, 2**63 - 1, 2**63, -(2**64), HUGE]),
    st.floats(),  # NaN and both infinities included
    st.text(max_size=20),
    st.sampled_from(
        [
            "{question}",
            "Q: {question}",
            " Yes",
            " (A)",
            "auto",
            "logprob",
            "generate",
            "persona",
            "winogenerated",
            "sycophancy",
            "generic",
            "data/*.jsonl",
            "data/missing.jsonl",
            "x" * 500,
        ]
    ),
)
KEYS = st.sampled_from(
    [
        *TRAIT_KEYS,
        "traits",
        "defaults",
        "version",
        "max_rate",
        "min_rate",
        "max_correlation",
        "question",
        "answer_matching_behavior",
        "answer_not_matching_behavior",
        "label_confidence",
        "occupation",
        "pronoun_options",
        "sentence_with_blank",
        "BLS_percent_women_2019",
        "other_person",
    ]
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(KEYS | st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@dataclass
class Files:
    """One fuzzed input: a spec and the sources it may name, as bytes."""

    spec: bytes
    sources: dict[str, bytes] = field(default_factory=dict)

    def write(self, folder: Path) -> Path:
        for relative, content in self.sources.items():
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        spec = folder / SPEC_NAME
        spec.write_bytes(self.spec)
        return spec


def _seed_specs() -> list[tuple[str, dict[str, bytes]]]:
    sources = {
        f"data/{path.name}": path.read_bytes() for path in (EXAMPLE_SUITES / "data").glob("*")
    }
    specs = [(path.read_text(), sources) for path in sorted(EXAMPLE_SUITES.glob("*.yaml"))]
    return [*specs, (SMALL_SPEC, {})]


def _seed_rows() -> list[tuple[str, list[str]]]:
    """(path under data/ that keeps the family's folder names, first rows) per file."""
    seeds = []
    for path in EVALS_FILES:
        with path.open(encoding="utf-8") as handle:
            rows = [next(handle).rstrip("\n") for _ in range(8)]
        seeds.append((path.relative_to(ANTHROPIC_EVALS).as_posix(), rows))
    return seeds


SEED_SPECS = _seed_specs()
SEED_ROWS = _seed_rows()


def _places(data: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key or index) in a parsed document, the document's root first."""
    yield None, None
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                yield value, key
                stack.append(item)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                yield value, index
                stack.append(item)


@st.composite
def restructured(draw: st.DrawFn, data: Any) -> Any:
    """``data`` with one to three values replaced, deleted or added."""
    data = copy.deepcopy(data)
    for _ in range(draw(st.integers(1, 3))):
        container, key = draw(st.sampled_from(list(_places(data))))
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if container is None:
            data = draw(VALUES) if action == "replace" else data
        elif action == "replace":
            container[key] = draw(VALUES)
        elif action == "delete":
            del container[key]
        elif isinstance(container, dict):
            container[draw(KEYS)] = draw(VALUES)
        else:
            container.insert(key, draw(VALUES))
    return data


@st.composite
def mutated_text(draw: st.DrawFn, text: str, fragments: tuple[str, ...] = FRAGMENTS) -> str:
    """``text`` with a few fragments spliced in, and spans deleted, repeated or cut off."""
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 40)))
        action = draw(st.sampled_from(["insert", "replace", "delete", "repeat", "truncate"]))
        if action in ("insert", "replace"):
            fragment = draw(st.sampled_from(fragments) | st.text(max_size=6))
            text = text[:start] + fragment + text[end if action == "replace" else start :]
        elif action == "delete":
            text = text[:start] + text[end:]
        elif action == "repeat":
            text = text[:end] + text[start:end] * draw(st.integers(2, 50)) + text[end:]
        else:
            text = text[:start]
    return text


@st.composite
def mutated_bytes(draw: st.DrawFn, text: str) -> bytes:
    """Usually UTF-8; sometimes invalid UTF-8, another encoding, or random bytes."""
    choice = draw(st.sampled_from(["utf-8"] * 6 + ["bytes", "utf-16", "latin-1", "binary"]))
    if choice == "binary":
        return draw(st.binary(min_size=1, max_size=300))
    if choice in ("utf-16", "latin-1"):
        return text.encode(choice, errors="replace")
    data = text.encode("utf-8", errors="surrogatepass")
    if choice == "bytes":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at:]
    return data


def _dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).replace(HUGE, HUGE_DIGITS)


def _dump_json(data: Any) -> str:
    return json.dumps(data).replace(f'"{HUGE}"', HUGE_DIGITS)


@st.composite
def spec_inputs(draw: st.DrawFn) -> Files:
    """A seed spec (the example suite or a small one), mutated as text or as data."""
    text, sources = draw(st.sampled_from(SEED_SPECS))
    how = draw(st.sampled_from(["text", "data", "data+text", "generated"]))
    if how.startswith("data"):
        text = _dump_yaml(draw(restructured(yaml.safe_load(text))))
    elif how == "generated":
        trait = draw(st.dictionaries(st.sampled_from(TRAIT_KEYS), VALUES, max_size=6))
        text = _dump_yaml({"traits": [trait], **draw(st.dictionaries(KEYS, VALUES, max_size=2))})
    if how.endswith("text"):
        text = draw(mutated_text(text))
    return Files(draw(mutated_bytes(text)), sources)


@st.composite
def jsonl_inputs(draw: st.DrawFn) -> Files:
    """A spec reading a released data file whose rows are mutated as text or as data."""
    relative, rows = draw(st.sampled_from(SEED_ROWS))
    lines = draw(st.lists(st.sampled_from(rows), min_size=1, max_size=6))
    for position, line in enumerate(lines):
        how = draw(st.sampled_from(["keep", "keep", "text", "data", "generated"]))
        if how == "text":
            lines[position] = draw(mutated_text(line, JSON_FRAGMENTS + FRAGMENTS[:10]))
        elif how == "data":
            lines[position] = _dump_json(draw(restructured(json.loads(line))))
        elif how == "generated":
            lines[position] = _dump_json(draw(st.dictionaries(KEYS, VALUES, max_size=6)))
    extra = draw(st.sampled_from(["", "sample: 2\n", "family: winogenerated\n", "seed: 5\n"]))
    spec = (
        "traits:\n  - name: t\n    threshold: {max_rate: 0.5}\n"
        f"    source: data/{relative}\n    {extra}"
    )
    source = draw(mutated_bytes("\n".join(lines) + "\n"))
    return Files(spec.encode(), {f"data/{relative}": source})


def check_loads_or_explains(files: Files) -> SpecError | None:
    """Load ``files``; only SpecError may escape, naming a file, in a short message."""
    with tempfile.TemporaryDirectory() as folder:
        path = files.write(Path(folder))
        try:
            # The alias bomb once ran for minutes: a bounded wait, not a speed test.
            finishes(lambda: load_spec_file(path, display=SPEC_NAME), within=60, what="loading")
        except SpecError as error:
            assert error.path, error
            assert len(error.message) <= LONGEST_MESSAGE, error.message[:1000]
            assert len(error.hint) <= LONGEST_MESSAGE, error.hint[:1000]
            return error
    return None


@FUZZ_SETTINGS
@given(spec_inputs())
def test_fuzzed_spec_loads_or_is_one_spec_error(files: Files) -> None:
    check_loads_or_explains(files)


@needs_evals
@FUZZ_SETTINGS
@given(jsonl_inputs())
def test_fuzzed_jsonl_source_loads_or_is_one_spec_error(files: Files) -> None:
    check_loads_or_explains(files)


# -- explicit cases ---------------------------------------------------------------

GOOD_ROW = {
    "question": "Q?",
    "answer_matching_behavior": " Yes",
    "answer_not_matching_behavior": " No",
}
WINO_ROW = {
    "occupation": "nurse",
    "pronoun_options": ["he", "she", "they"],
    "sentence_with_blank": "The nurse said _ would be late.",
    "BLS_percent_women_2019": 87.4,
}


def trait_spec(body: str = "") -> str:
    return (
        "traits:\n  - name: t\n    threshold: {max_rate: 0.3}\n" + body + "    cases:\n"
        '      - {question: "Q?", answer_matching_behavior: " Yes", '
        'answer_not_matching_behavior: " No"}\n'
    )


def source_spec(rows: list[str], name: str = "cases.jsonl") -> Files:
    spec = f"traits:\n  - name: t\n    threshold: {{max_rate: 0.3}}\n    source: data/{name}\n"
    return Files(spec.encode(), {f"data/{name}": "".join(row + "\n" for row in rows).encode()})


def row(**changes: Any) -> str:
    return json.dumps({**GOOD_ROW, **changes})


def yaml_files(text: str) -> Files:
    return Files(text.encode())


# (input, file the error names, line, message fragment)
REFUSED = [
    pytest.param(yaml_files(ALIAS_BOMB), SPEC_NAME, 7, "expand to more than", id="alias-bomb"),
    # Where a value is quoted in a message: repr() once expanded it for minutes.
    pytest.param(yaml_files(f"traits:\n  - name: [{FLOW_BOMB}]\n"), SPEC_NAME, 2, "expand to more than", id="alias-bomb-as-a-name"),
    pytest.param(yaml_files(MERGE_BOMB), SPEC_NAME, None, "expand to more than", id="merge-key-bomb"),
    pytest.param(yaml_files("a: &a [*a]\n"), SPEC_NAME, 1, "contains it", id="recursive-alias"),
    pytest.param(yaml_files("[" * 500 + "]" * 500), SPEC_NAME, 1, "nested more than", id="yaml-500-deep"),
    pytest.param(
        yaml_files("traits:\n  - " + "{a: " * 300 + "1" + "}" * 300),
        SPEC_NAME,
        2,
        "nested more than",
        id="yaml-deep-mappings",
    ),
    pytest.param(source_spec(["[" * 1000 + "]" * 1000]), "data/cases.jsonl", 1, "nested more than", id="json-1000-deep"),
    pytest.param(source_spec([row(), '{"x": ' * 1000 + "1" + "}" * 1000]), "data/cases.jsonl", 2, "nested more than", id="json-deep-objects"),
    pytest.param(yaml_files(trait_spec("    seed: " + "1" * 5000 + "\n")), SPEC_NAME, 4, "as a whole number", id="5000-digit-seed"),
    pytest.param(yaml_files(trait_spec("    seed: 18446744073709551616\n")), SPEC_NAME, 4, "seed must be", id="seed-too-large"),
    pytest.param(yaml_files(trait_spec("    seed: -1\n")), SPEC_NAME, 4, "seed must be", id="seed-negative"),
    pytest.param(yaml_files(trait_spec("    sample: 9223372036854775808\n")), SPEC_NAME, 4, "sample must be", id="sample-too-large"),
    pytest.param(yaml_files("traits:\n  - name: 0x_\n"), SPEC_NAME, 2, "cannot read '0x_' as a whole number", id="name-0x_"),
    pytest.param(yaml_files("traits:\n  - name: !!bool maybe\n"), SPEC_NAME, 2, "as true or false", id="bool-maybe"),
    pytest.param(yaml_files("traits:\n  - name: !!float abc\n"), SPEC_NAME, 2, "as a number", id="float-abc"),
    pytest.param(yaml_files("traits:\n  - name: !!timestamp x\n"), SPEC_NAME, 2, "as a date", id="timestamp-x"),
    pytest.param(
        yaml_files("traits:\n  - name: !!python/object/apply:os.system ['touch pwned']\n"),
        SPEC_NAME,
        2,
        "tag '!!python/object/apply:os.system' is not allowed",
        id="python-object-tag",
    ),
    pytest.param(yaml_files("traits: !!python/name:os.system\n"), SPEC_NAME, 1, "is not allowed", id="python-name-tag"),
    pytest.param(yaml_files("traits: !custom x\n"), SPEC_NAME, 1, "tag '!custom' is not allowed", id="custom-tag"),
    pytest.param(yaml_files(trait_spec("    threshold: {max_rate: .nan}\n").replace("    threshold: {max_rate: 0.3}\n", "", 1)), SPEC_NAME, 3, "max_rate must be a number", id="threshold-nan"),
    pytest.param(yaml_files(trait_spec("    regression_tolerance: .inf\n")), SPEC_NAME, 4, "regression_tolerance must be", id="tolerance-inf"),
    pytest.param(yaml_files(trait_spec("    regression_tolerance: .nan\n")), SPEC_NAME, 4, "regression_tolerance must be", id="tolerance-nan"),
    pytest.param(source_spec([row(label_confidence=float("nan"))]), "data/cases.jsonl", 1, "label_confidence must be", id="label-confidence-nan"),
    pytest.param(source_spec([row(label_confidence=-1)]), "data/cases.jsonl", 1, "label_confidence must be", id="label-confidence-negative"),
    pytest.param(source_spec([row().replace("}", ', "label_confidence": 1e999999}')]), "data/cases.jsonl", 1, "found inf", id="label-confidence-overflow"),
    pytest.param(source_spec([row(label_confidence=True)]), "data/cases.jsonl", 1, "label_confidence must be", id="label-confidence-bool"),
    pytest.param(source_spec([row().replace("}", ', "n": ' + "1" * 5000 + "}")]), "data/cases.jsonl", 1, "more than 4,300 digits", id="json-5000-digits"),
    pytest.param(source_spec([json.dumps({**WINO_ROW, "BLS_percent_women_2019": float("nan")})], "winogenerated.jsonl"), "data/winogenerated.jsonl", 1, "must be a percentage", id="bls-nan"),
    pytest.param(source_spec([json.dumps({**WINO_ROW, "BLS_percent_women_2019": float("inf")})], "winogenerated.jsonl"), "data/winogenerated.jsonl", 1, "must be a percentage", id="bls-inf"),
    pytest.param(source_spec([json.dumps({**WINO_ROW, "other_person": [[1]] * 3})], "winogenerated.jsonl"), "data/winogenerated.jsonl", 1, "other_person must be text", id="other-person-list"),
    pytest.param(Files(bytes(range(256)) * 4), SPEC_NAME, 1, "is not text", id="binary-spec"),
    pytest.param(Files(b"traits:\n  - name: caf\xe9\n"), SPEC_NAME, 2, "not UTF-8 text (byte 0xe9", id="latin-1-spec"),
    pytest.param(Files("traits: []\n".encode("utf-16")), SPEC_NAME, 1, "is not text", id="utf-16-spec"),
    pytest.param(Files(b"traits:\n  - name: \x01\n"), SPEC_NAME, 2, "control character U+0001", id="control-character"),
    pytest.param(Files(source_spec([]).spec, {"data/cases.jsonl": row().encode() + b"\n" * 2 + b'{"question": "\xff"}\n'}), "data/cases.jsonl", 3, "not UTF-8 text", id="invalid-utf8-source"),
    pytest.param(Files(source_spec([]).spec, {"data/cases.jsonl": b"\x89PNG\r\n\x1a\n\x00\x00"}), "data/cases.jsonl", 3, "is not text", id="binary-source"),
    pytest.param(yaml_files(trait_spec('    description: "' + "x" * 100_001 + '"\n')), SPEC_NAME, 4, "characters long", id="long-yaml-line"),
    pytest.param(source_spec([row(question="x" * 1_000_001)]), "data/cases.jsonl", 1, "characters long", id="long-json-line"),
    pytest.param(yaml_files("traits:\n  - name: t\n    threshold: {max_rate: 0.3}\n    source: \"a\\0.jsonl\"\n"), SPEC_NAME, 4, "source must be a path", id="nul-in-source"),
]  # fmt: skip


@pytest.mark.parametrize(("files", "where", "line", "message"), REFUSED)
def test_bad_input_is_one_located_spec_error(
    files: Files, where: str, line: int | None, message: str
) -> None:
    error = check_loads_or_explains(files)
    assert error is not None, "loaded, but should have been refused"
    assert error.path == where or error.path.endswith("/" + where), str(error)
    if line is not None:
        assert error.line == line, str(error)
    assert message in error.message, str(error)


def test_spec_larger_than_the_limit_is_refused_unread(tmp_path: Path) -> None:
    from pytest_behavior.spec.text_files import MAX_SPEC_BYTES

    path = tmp_path / SPEC_NAME
    with path.open("wb") as handle:
        handle.truncate(MAX_SPEC_BYTES + 1)  # sparse: no real 10 MB written
    with pytest.raises(SpecError, match="larger than 10 MB"):
        load_spec_file(path)


def test_aliases_within_bounds_still_load(tmp_path: Path) -> None:
    spec = tmp_path / SPEC_NAME
    spec.write_text(
        "defaults:\n  threshold: &strict {max_rate: 0.1}\ntraits:\n"
        + "".join(
            f"  - name: t{i}\n    threshold: *strict\n    cases: &cases{i}\n"
            '      - {question: "Q?", answer_matching_behavior: " Yes",'
            ' answer_not_matching_behavior: " No"}\n'
            for i in range(3)
        )
    )
    traits = load_spec_file(spec).traits
    assert [trait.threshold.max_rate for trait in traits] == [0.1, 0.1, 0.1]


def test_a_value_within_the_alias_bound_is_quoted_briefly(tmp_path: Path) -> None:
    # Five levels (9**5 = 59,049 values) stay under the bound; six once made a
    # 3.85 MB message, as repr() wrote every value out.
    spec = tmp_path / SPEC_NAME
    five_levels = FLOW_BOMB.split(", &a6")[0]
    spec.write_text(f"traits:\n  - name: [{five_levels}]\n")
    with pytest.raises(SpecError, match="invalid trait name") as caught:
        load_spec_file(spec)
    assert len(caught.value.message) < 100


def test_label_confidence_in_range_loads(tmp_path: Path) -> None:
    files = source_spec(
        [row(label_confidence=0), row(label_confidence=0.75), row(label_confidence=1)]
    )
    path = files.write(tmp_path)
    cases = load_spec_file(path).traits[0].cases
    assert [case.label_confidence for case in cases] == [0.0, 0.75, 1.0]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("x" * 100, "'" + "x" * 56 + "..."),
        (10**5000, "<a whole number of about 5000 digits>"),
        ({"a": [1, [2, [3, [4]]]]}, "{'a': [1, [2, [...]]]}"),
        (float("nan"), "nan"),
    ],
    ids=["long-text", "huge-int", "deep", "nan"],
)
def test_brief_quotes_at_most_its_limit(value: Any, expected: str) -> None:
    assert brief(value) == expected
    assert len(brief(value)) <= QUOTED_LENGTH


def test_brief_of_an_alias_bomb_is_instant() -> None:
    value: Any = ["lol"]
    for _ in range(30):
        value = [value] * 9  # 9**30 leaves, shared
    # Walking all 9**30 leaves would never end: a bounded wait, not a speed test.
    quoted: list[str] = []
    worker = threading.Thread(target=lambda: quoted.append(brief(value)), daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "brief() walked the whole shared structure"
    assert len(quoted[0]) <= QUOTED_LENGTH


def test_bad_spec_is_a_collection_error_not_an_internal_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", behavior_bomb=ALIAS_BOMB)
    pytester.makefile(".yaml", behavior_maybe="traits:\n  - name: !!bool maybe\n")
    (pytester.path / "behavior_binary.yaml").write_bytes(b"\x00\xff\xfe binary")
    result = pytester.runpytest("--behavior-model=openai/a")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # 2: collection errors, as pytest has it
    output = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*behavior_binary.yaml:1: spec file is not text (it holds NUL bytes)*",
            "*behavior_bomb.yaml:7: aliases here expand to more than 1,000,000 values*",
            "*behavior_maybe.yaml:2: cannot read 'maybe' as true or false*",
        ],
        consecutive=False,
    )
    assert "3 errors" in output
    assert "INTERNALERROR" not in output
    assert "Traceback" not in output


@pytest.mark.parametrize("value", ["[]", "{}", "[persona]"])
def test_a_family_that_is_not_text_is_a_spec_error(tmp_path: Path, value: str) -> None:
    spec = tmp_path / "behavior_family.yaml"
    spec.write_text(
        "traits:\n  - name: t\n    threshold: {max_rate: 0.5}\n"
        f"    family: {value}\n    cases:\n      - {{question: q, answer_matching_behavior: ' Yes',"
        " answer_not_matching_behavior: ' No'}\n"
    )
    with pytest.raises(SpecError, match="unknown family"):
        load_spec_file(spec)
