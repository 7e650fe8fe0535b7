""".ci/check_supply_chain.py fails on a compromised litellm or a stray startup .pth, and
passes on this virtualenv as .ci/setup built it; .ci/requirements.lock pins every
package of constraints.txt with sha256 hashes, and .ci/setup installs from it with
--require-hashes."""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from helpers import REPO

SCRIPT = REPO / ".ci" / "check_supply_chain.py"
DISTUTILS_PRECEDENCE = (
    "import os; var = 'SETUPTOOLS_USE_DISTUTILS'; enabled = os.environ.get(var, 'local') "
    "== 'local'; enabled and __import__('_distutils_hack').add_shim(); \n"
)
# What the compromised releases planted (the payload itself is not reproduced).
LITELLM_INIT = "import os, subprocess; subprocess.Popen(['true'])\n"


def check(site_packages: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--site-packages", str(site_packages)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def install(site_packages: Path, name: str, version: str) -> None:
    dist_info = site_packages / f"{name}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    )


@pytest.fixture
def clean_site_packages(tmp_path: Path) -> Path:
    """A site-packages as .ci/setup leaves it: litellm, setuptools' and the editable .pth."""
    site_packages = tmp_path / "site-packages"
    install(site_packages, "litellm", "1.106.12")
    install(site_packages, "pytest_behavior", "0.1.0")
    (site_packages / "distutils-precedence.pth").write_text(DISTUTILS_PRECEDENCE)
    finder = "__editable___pytest_behavior_0_1_0_finder"
    (site_packages / "__editable__.pytest_behavior-0.1.0.pth").write_text(
        f"import {finder}; {finder}.install()\n"
    )
    (site_packages / "paths-only.pth").write_text("# a comment\n/opt/extra/lib\n")
    return site_packages


def test_clean_site_packages_passes(clean_site_packages: Path) -> None:
    result = check(clean_site_packages)
    assert result.returncode == 0, result.stderr
    assert "supply chain: ok" in result.stdout


def test_planted_litellm_init_pth_fails(clean_site_packages: Path) -> None:
    (clean_site_packages / "litellm_init.pth").write_text(LITELLM_INIT)
    result = check(clean_site_packages)
    assert result.returncode == 1
    assert "litellm_init.pth:1 runs code at every interpreter start" in result.stderr
    assert "FAILED" in result.stderr


def test_tampered_allowed_pth_fails(clean_site_packages: Path) -> None:
    # An allowed name is no free pass: its line must be exactly the known one.
    with (clean_site_packages / "distutils-precedence.pth").open("a") as handle:
        handle.write("import urllib.request; urllib.request.urlopen('http://example.invalid')\n")
    result = check(clean_site_packages)
    assert result.returncode == 1
    assert "distutils-precedence.pth:2 runs code" in result.stderr


@pytest.mark.parametrize("version", ["1.82.7", "1.82.8"])
def test_compromised_litellm_version_fails(tmp_path: Path, version: str) -> None:
    site_packages = tmp_path / "site-packages"
    install(site_packages, "litellm", version)
    result = check(site_packages)
    assert result.returncode == 1
    assert f"litellm {version} is a known-compromised release" in result.stderr


def test_sitecustomize_fails(clean_site_packages: Path) -> None:
    (clean_site_packages / "sitecustomize.py").write_text("print('hello')\n")
    result = check(clean_site_packages)
    assert result.returncode == 1
    assert "sitecustomize.py runs at every interpreter start" in result.stderr


@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="runs only inside a virtualenv")
def test_this_virtualenv_passes() -> None:
    # The allow-list matches what .ci/setup installs; a new .pth must be added on purpose.
    result = check(Path(sysconfig.get_paths()["purelib"]))
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------- the hash-pinned lock

LOCK = REPO / ".ci" / "requirements.lock"
CONSTRAINTS = REPO / "constraints.txt"
SETUP = REPO / ".ci" / "setup"
INSTALL_LOCAL_MODEL = REPO / ".ci" / "install-local-model.sh"
SHA256 = re.compile(r"--hash=sha256:([0-9a-f]{64})(?![0-9a-zA-Z])")
PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_lines(path: Path) -> list[str]:
    """The requirement lines of a pip requirements file: backslash-continued lines
    joined (as pip reads them), comments and blank lines dropped."""
    logical = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    lines = (re.sub(r"(^|\s)#.*", "", line).strip() for line in logical.splitlines())
    return [line for line in lines if line]


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in requirement_lines(path):
        match = PIN.match(line)
        assert match, f"{path.name}: not an exact name==version pin: {line[:80]}"
        name = normalise(match[1])
        assert name not in found, f"{path.name}: {name} is pinned twice"
        found[name] = match[2]
    return found


def test_every_locked_requirement_has_a_sha256_hash() -> None:
    lines = requirement_lines(LOCK)
    assert len(lines) > 50, "the lock looks truncated"
    for line in lines:
        assert SHA256.search(line), f"no --hash=sha256:<64 hex> for {line.split()[0]}"
        # Nothing but the pin and its hashes: no second, weaker way to get a package.
        rest = SHA256.sub("", PIN.sub("", line, count=1)).strip()
        assert rest == "", f"unexpected text for {line.split()[0]}: {rest[:80]}"


def test_lock_pins_exactly_what_constraints_pin() -> None:
    locked, constrained = pins(LOCK), pins(CONSTRAINTS)
    assert sorted(locked) == sorted(constrained), "run .ci/lock after changing constraints.txt"
    different = {
        name: (constrained[name], locked[name])
        for name in constrained
        if constrained[name] != locked[name]
    }
    assert different == {}, f"constraints.txt vs lock (run .ci/lock): {different}"


def test_lock_never_holds_a_compromised_litellm() -> None:
    version = pins(LOCK)["litellm"]
    assert version not in {"1.82.7", "1.82.8"}, f"litellm {version} was a compromised release"


def test_lock_holds_the_llama_cpp_python_sdist_hash() -> None:
    # install-local-model.sh builds the wheel from this sdist and checks it against
    # the lock; the cache of built wheels is keyed by this version.
    assert pins(LOCK)["llama-cpp-python"] == pins(CONSTRAINTS)["llama-cpp-python"]
    script = INSTALL_LOCAL_MODEL.read_text(encoding="utf-8")
    assert "--require-hashes" in script
    assert "requirements.lock" in script


def test_setup_installs_from_the_lock_with_require_hashes() -> None:
    commands = [
        line.split("#", 1)[0]
        for line in SETUP.read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("#")
    ]
    installs = [line for line in commands if " install " in line and "pip" in line]
    locked = [line for line in installs if "-r .ci/requirements.lock" in line]
    assert locked, "no pip install -r .ci/requirements.lock in .ci/setup"
    assert all("--require-hashes" in line for line in locked), (
        "install the lock with --require-hashes"
    )
    # Every other pip install is pip itself (by version) or the project (editable, no
    # dependencies): nothing unhashed slips in. (install-local-model.sh: test above.)
    for line in installs:
        if line in locked:
            continue
        assert '"pip==' in line or "--no-deps -e ." in line, f"unhashed install: {line.strip()}"
    assert any("check_supply_chain.py" in line for line in commands[-3:])
