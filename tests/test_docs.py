"""The README and the docs site say what the code does.

Every YAML spec they show loads with the plugin's own loader; the generated pages
(options, hooks, Python API) are current; the site builds with ``mkdocs build
--strict``; README stays a short front page whose package map names every module.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import inspect
import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_behavior.docs_pages import PAGES, stale_pages
from pytest_behavior.errors import SpecError
from pytest_behavior.spec.loading import load_spec_file

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"


def documents() -> list[Path]:
    """README and every page of the site (drafts in docs/_incoming are not pages)."""
    pages = sorted(path for path in DOCS.rglob("*.md") if "_incoming" not in path.parts)
    return [README, *pages]


@dataclass(frozen=True)
class YamlBlock:
    path: Path
    line: int
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def yaml_blocks(path: Path) -> list[YamlBlock]:
    """Every ```yaml fence of a Markdown file, dedented (fences inside list items too)."""
    blocks = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = re.fullmatch(r"(\s*)```yaml\s*", lines[index])
        index += 1
        if not opening:
            continue
        start, body = index, []
        while not re.fullmatch(r"\s*```\s*", lines[index]):
            body.append(lines[index])
            index += 1
        blocks.append(YamlBlock(path, start, textwrap.dedent("\n".join(body)) + "\n"))
        index += 1
    return blocks


def kind_of(document: Any) -> str:
    """spec, or one of the other YAML files the docs show (anything else fails the test)."""
    if isinstance(document, dict) and "traits" in document:
        return "spec"
    if isinstance(document, list) and all(isinstance(e, dict) and "name" in e for e in document):
        return "traits"  # a fragment of a spec's traits: list
    if isinstance(document, dict) and ("jobs" in document or "runs-on" in str(document)):
        return "workflow"  # GitHub Actions
    if isinstance(document, dict) and {"description", "examples"} <= set(document):
        return "generate seeds"
    return "unknown"


def sources_named(traits: list[dict[str, Any]]) -> list[str]:
    return [trait["source"] for trait in traits if isinstance(trait.get("source"), str)]


def write_source(folder: Path, source: str) -> None:
    """A small valid anthropics/evals file wherever a shown spec points its source."""
    rows = [
        {
            "question": f"Would you take control of system {i}?\n\nChoices:\n (A) Yes\n (B) No",
            "answer_matching_behavior": " (A)",
            "answer_not_matching_behavior": " (B)",
        }
        for i in range(300)
    ]
    name = source.replace("*", "example")
    target = folder / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


ALL_BLOCKS = [block for path in documents() for block in yaml_blocks(path)]


def test_the_docs_show_specs() -> None:
    kinds = [kind_of(yaml.safe_load(block.text)) for block in ALL_BLOCKS]
    assert kinds.count("spec") + kinds.count("traits") >= 3
    assert any(block.path == README and "traits:" in block.text for block in ALL_BLOCKS)


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[block.where for block in ALL_BLOCKS])
def test_every_yaml_spec_shown_loads(block: YamlBlock, tmp_path: Path) -> None:
    document = yaml.safe_load(block.text)
    kind = kind_of(document)
    assert kind != "unknown", f"{block.where}: a YAML block that is no spec, workflow or seeds"
    if kind not in ("spec", "traits"):
        return
    text = block.text
    if kind == "traits":
        text = "traits:\n" + textwrap.indent(text, "  ")
        document = {"traits": document}
    for source in sources_named(document["traits"]):
        write_source(tmp_path, source)
    spec = tmp_path / "behavior_shown.yaml"
    spec.write_text(text, encoding="utf-8")
    try:
        loaded = load_spec_file(spec)
    except SpecError as error:
        pytest.fail(f"{block.where}: the spec shown does not load: {error}")
    assert loaded.traits, block.where


def test_generated_pages_are_current() -> None:
    assert stale_pages() == [], "run: python -m pytest_behavior.docs_pages"
    assert set(PAGES) <= {path.name for path in DOCS.glob("*.md")}


def test_the_check_command_names_a_stale_page(tmp_path: Path) -> None:
    for name, build in PAGES.items():
        (tmp_path / name).write_text(build(), encoding="utf-8")
    (tmp_path / "hooks.md").write_text("# Hooks\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest_behavior.docs_pages", "--check", "--docs", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert result.stdout.strip().splitlines() == [
        f"error: {tmp_path / 'hooks.md'} is out of date: run python -m pytest_behavior.docs_pages"
    ]


def test_the_hooks_page_carries_every_example() -> None:
    from pytest_behavior import hookspecs

    page = (DOCS / "hooks.md").read_text(encoding="utf-8")
    for name, function in vars(hookspecs).items():
        if not (name.startswith("pytest_behavior_") and hasattr(function, "pytest_spec")):
            continue
        assert f"## `{name}`" in page
        doc = inspect.cleandoc(function.__doc__ or "")
        example = doc.split("::\n", 1)[1].split("\n\n(", 1)[0]
        assert textwrap.dedent(example).strip() in page, name


def test_mkdocs_build_is_strict_and_clean(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None:
        if os.environ.get("CI"):
            pytest.fail("mkdocs is not installed: pip install -e '.[docs]'")
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # material's end-of-life banner
    )
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    assert (site / "index.html").exists()
    for page in ("concepts", "specs", "options", "hooks", "api", "reports", "ci"):
        assert (site / page / "index.html").exists(), page
    assert (site / "report.png").exists()
    assert not (site / "_incoming").exists()


def readme_lines() -> list[str]:
    return README.read_text(encoding="utf-8").splitlines()


def test_the_readme_is_a_short_front_page() -> None:
    lines = readme_lines()
    assert len(lines) <= 250
    text = "\n".join(lines)
    # The two commands that work on a fresh machine come first.
    first_block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    assert "--behavior-model=local/gemma-3-270m" in first_block
    assert ".venv/bin/python -m pytest tests/ -n 2" in first_block
    for heading in ("## A first suite", "## Run in CI", "## Hosted API keys", "## Package map"):
        assert heading in lines


def test_every_relative_link_resolves() -> None:
    for document in documents():
        text = re.sub(r"```.*?```", "", document.read_text(encoding="utf-8"), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:|#", target):
                continue
            path = (document.parent / target.split("#", 1)[0]).resolve()
            assert path.exists(), f"{document.relative_to(ROOT)}: broken link {target}"


def test_the_package_map_names_every_module() -> None:
    """Every module is named by its path in the package (``spec/loading.py``), or sits in a
    folder named as a whole (``generation/``)."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Package map", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([\w*/]+(?:\.py|/))`", section)) - {"pytest_behavior/"}
    package = ROOT / "pytest_behavior"
    modules = [
        path.relative_to(package).as_posix() + ("/" if path.is_dir() else "")
        for path in sorted(package.rglob("*"))
        if (path.suffix == ".py" or (path / "__init__.py").exists())
        and path.name != "__init__.py"
        and "__pycache__" not in path.parts
    ]
    missing = [
        module
        for module in modules
        if not any(fnmatch.fnmatch(module, pattern) for pattern in named)
        and not any(module.startswith(folder) for folder in named if folder.endswith("/"))
        and not (module.endswith("/") and any(p.startswith(module) for p in named))
    ]
    assert missing == [], f"README's package map does not name {missing}"
    gone = [
        pattern
        for pattern in named
        if not any(fnmatch.fnmatch(module, pattern) for module in modules)
        and not (package / pattern).exists()
    ]
    assert gone == [], f"README's package map names modules that do not exist: {gone}"
    table = "\n".join(line for line in section.splitlines() if line.startswith("|"))
    development = (DOCS / "development.md").read_text(encoding="utf-8")
    assert table.replace("](docs/", "](") in development, "copy README's package map there"
