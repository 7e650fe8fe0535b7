"""Fail if the virtualenv holds a known-compromised litellm or code that runs at every start.

litellm 1.82.7 and 1.82.8 were a supply-chain compromise: they shipped a
``litellm_init.pth``, and Python's ``site`` module executes every line of a
``.pth`` file in site-packages that starts with ``import``, at every interpreter
start, whether litellm is imported or not. Removing the package does not always
remove such a file. So this check looks at the installed litellm version and at
every ``.pth`` file: only lines that add a path are allowed, except in the files
listed in ``ALLOWED_STARTUP_CODE``, whose executable lines must match exactly.

Standard library only: it must run before anything installed can be trusted.

    python .ci/check_supply_chain.py                  # the running interpreter's site-packages
    python .ci/check_supply_chain.py --site-packages DIR
"""

from __future__ import annotations

import argparse
import email.parser
import fnmatch
import re
import sys
import sysconfig
from pathlib import Path

COMPROMISED = {"litellm": {"1.82.7", "1.82.8"}}
# File name pattern -> the executable line it may hold (a regex, matched whole).
ALLOWED_STARTUP_CODE = {
    # setuptools: lets its vendored distutils take precedence over the stdlib's.
    "distutils-precedence.pth": re.escape(
        "import os; var = 'SETUPTOOLS_USE_DISTUTILS'; "
        "enabled = os.environ.get(var, 'local') == 'local'; "
        "enabled and __import__('_distutils_hack').add_shim(); "
    ),
    # pip install -e . of this project: setuptools' finder for the editable package.
    "__editable__.pytest_behavior-*.pth": (
        r"import (__editable___pytest_behavior_[0-9a-z_]+_finder); \1\.install\(\)"
    ),
}
# Also run at every start when present in site-packages (site.py imports them).
STARTUP_MODULES = ("sitecustomize.py", "usercustomize.py")


def problems(site_packages: Path) -> list[str]:
    """Everything wrong with ``site_packages``, one sentence each; empty when it is clean."""
    found = [_compromised(dist_info) for dist_info in sorted(site_packages.glob("*.dist-info"))]
    found = [problem for problem in found if problem is not None]
    for pth in sorted(site_packages.glob("*.pth")):
        found.extend(_startup_code(pth))
    for name in STARTUP_MODULES:
        if (site_packages / name).exists():
            found.append(f"{site_packages / name} runs at every interpreter start")
    return found


def _compromised(dist_info: Path) -> str | None:
    metadata = dist_info / "METADATA"
    if not metadata.is_file():
        return None
    headers = email.parser.Parser().parsestr(
        metadata.read_text(encoding="utf-8", errors="replace"), headersonly=True
    )
    name = re.sub(r"[-_.]+", "-", (headers.get("Name") or "").lower())
    version = (headers.get("Version") or "").strip()
    if version in COMPROMISED.get(name, set()):
        return f"{name} {version} is a known-compromised release ({dist_info})"
    return None


def _startup_code(pth: Path) -> list[str]:
    allowed = [
        pattern for name, pattern in ALLOWED_STARTUP_CODE.items() if fnmatch.fnmatch(pth.name, name)
    ]
    found = []
    text = pth.read_text(encoding="utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        # Exactly the test site.addpackage applies before it exec()s a line.
        if not line.startswith(("import ", "import\t")):
            continue
        if any(re.fullmatch(pattern, line.rstrip("\n")) for pattern in allowed):
            continue
        shown = line if len(line) <= 80 else line[:77] + "..."
        found.append(f"{pth}:{number} runs code at every interpreter start: {shown}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--site-packages",
        type=Path,
        action="append",
        help="a site-packages folder to check (repeatable; default: this interpreter's)",
    )
    folders = parser.parse_args(argv).site_packages or sorted(
        {Path(sysconfig.get_paths()[scheme]) for scheme in ("purelib", "platlib")}
    )
    found = []
    for site_packages in folders:
        if not site_packages.is_dir():
            print(f"supply chain: {site_packages} is not a folder", file=sys.stderr)
            return 2
        found.extend(problems(site_packages))
    for problem in found:
        print(f"supply chain: {problem}", file=sys.stderr)
    if found:
        print(
            "supply chain: FAILED. Remove the file(s) above (or rebuild the virtualenv "
            "from constraints.txt); if a new .pth file is legitimate, add it to "
            "ALLOWED_STARTUP_CODE in .ci/check_supply_chain.py.",
            file=sys.stderr,
        )
        return 1
    print(f"supply chain: ok ({', '.join(str(folder) for folder in folders)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
