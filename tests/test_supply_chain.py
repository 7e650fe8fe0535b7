""".ci/check_supply_chain.py fails on a compromised litellm or a stray startup .pth, and
passes on this virtualenv as .ci/setup built it."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import REPO

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
