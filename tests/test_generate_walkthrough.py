"""The docs' offline walkthrough of ``generate``, run command by command as written.

The block under "Try it offline" is taken out of docs/generation.md; its port is swapped
for a free one and ``.venv/bin/python`` for this interpreter; then each command
runs in a fresh process in an empty folder, as a new user would run them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

GENERATION_PAGE = Path(__file__).resolve().parent.parent / "docs" / "generation.md"


def walkthrough() -> list[list[str]]:
    text = GENERATION_PAGE.read_text(encoding="utf-8")
    start = text.index("**Try it offline**")
    block = text[
        text.index("```bash\n", start) + len("```bash\n") : text.index("```\n", start + 40)
    ]
    commands = block.replace("\\\n", " ").strip().splitlines()
    return [shlex.split(command) for command in commands]


def test_the_docs_walkthrough_generates_a_trait_and_gates_a_model_on_it(
    tmp_path: Path,
) -> None:
    commands = walkthrough()
    serve, generate, review, gate, stop = commands
    assert serve[-1] == "&" and review[0] == "cat" and stop[0] == "kill"
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def argv(command: list[str], port: int) -> list[str]:
        swapped = [word.replace("8000", str(port)) for word in command]
        assert swapped[0] == ".venv/bin/python"
        return [sys.executable, *swapped[1:]]

    server = subprocess.Popen(
        argv(serve[:-1], 0),  # port 0: a free one, printed on the first line
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()  # the event: the server says where it listens
        port = int(re.search(r"127\.0\.0\.1:(\d+)/v1", first).group(1))  # type: ignore[union-attr]
        made = subprocess.run(
            argv(generate, port), cwd=tmp_path, capture_output=True, text=True, env=environment
        )
        assert made.returncode == 0, made.stderr
        out = tmp_path / "demo" / "deception.jsonl"
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        labels = [row["answer_matching_behavior"] for row in rows]
        assert labels.count(" Yes") == labels.count(" No") == 5
        assert all("I am" in row["statement"] for row in rows)
        assert (tmp_path / review[1]).read_text().startswith("# Review: deception.jsonl")
        assert "judge (exact):" in made.stderr and "rejected" in made.stderr
        gated = subprocess.run(
            argv(gate, port), cwd=tmp_path, capture_output=True, text=True, env=environment
        )
        assert gated.returncode in (0, 1), gated.stdout + gated.stderr
        assert re.search(r"deception\s", gated.stdout), gated.stdout  # the trait's verdict row
        assert "11 passed" in gated.stdout or "failed" in gated.stdout
    finally:
        server.terminate()
        server.wait(timeout=30)
