"""Before the first request that costs money: is the run sound?

Every check here is cheap and local (environment variables, files, one TCP
connect), so a run that could never give a verdict stops before it pays for
anything, with one line per problem saying what to do:

- the files the run reads: ``--behavior-baseline`` and ``--behavior-history``
  are parsed up front (a missing baseline used to be found after every request);
- the files the run writes: every report path is writable (nothing is created);
- budgets: ``--behavior-max-requests`` and ``--behavior-max-cost`` against the plan;
- credentials: the API-key variable litellm reads for each model's provider is set
  (not for a loopback ``--behavior-api-base``, which needs none);
- the endpoint: a TCP connect to each ``--behavior-api-base`` (a refused or
  unresolvable address is an error at once, not a 70 s "stall"). Hosted
  providers' default hosts are not probed: their errors are classified as they
  come (stopping.py).

Files and budgets are checked when the prefetch starts; credentials and the
endpoint just before the first uncached request (a rerun answered from the cache
needs neither). ``--behavior-dry-run`` runs every check and prints what it found.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pytest_behavior.errors import RunRefused

if TYPE_CHECKING:
    from pytest_behavior.fetch.budget import RunPlan
    from pytest_behavior.fetch.client import Endpoint
    from pytest_behavior.settings import BehaviorSettings

# How long a TCP connect to the endpoint may take: a listening server answers in
# milliseconds, even across a data centre; a black-holed address would hang for minutes.
CONNECT_TIMEOUT = 3.0
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
NOTHING_SENT = "nothing was sent"
# Providers that also find credentials outside variables (instance roles, ~/.aws,
# application-default credentials, Azure AD): a missing variable proves nothing there.
OTHER_CREDENTIALS = frozenset(
    {
        "bedrock",
        "bedrock_converse",
        "sagemaker",
        "sagemaker_chat",
        "vertex_ai",
        "vertex_ai_beta",
        "azure",
        "azure_ai",
    }
)


@dataclass(frozen=True)
class Finding:
    """One check: what was checked, and either what it found or the problem with its fix."""

    check: str
    subject: str
    found: str
    problem: str | None = None

    @property
    def line(self) -> str:
        return self.problem if self.problem is not None else f"{self.subject}: {self.found}"


@dataclass(frozen=True)
class Preflight:
    findings: tuple[Finding, ...]

    @property
    def problems(self) -> list[str]:
        return [finding.problem for finding in self.findings if finding.problem is not None]

    def refuse_if_unsound(self) -> None:
        """Stop the run, one line per problem, exit status 4, when any check failed."""
        problems = self.problems
        if problems:
            raise RunRefused([*problems[:-1], f"{problems[-1]} ({NOTHING_SENT})"])


# -- files the run reads ----------------------------------------------------------


def input_findings(settings: BehaviorSettings) -> list[Finding]:
    import pytest

    findings = []
    if settings.baseline is not None:
        from pytest_behavior.verdicts.baseline import load_baseline

        try:
            traits = len(load_baseline(settings.baseline))
            findings.append(
                Finding("files", f"baseline {settings.baseline}", f"{traits} trait results")
            )
        except pytest.UsageError as error:
            findings.append(
                Finding("files", f"baseline {settings.baseline}", "unusable", str(error))
            )
    history = settings.history
    if history is not None and history.exists():
        from pytest_behavior.report.history import HistoryError, load_history

        try:
            entries = len(load_history(history))
            findings.append(Finding("files", f"history {history}", f"{entries} earlier runs"))
        except HistoryError as error:
            findings.append(
                Finding(
                    "files",
                    f"history {history}",
                    "unusable",
                    f"{error}; fix or move the file, or choose another --behavior-history",
                )
            )
    return findings


# -- files the run writes --------------------------------------------------------


def output_paths(settings: BehaviorSettings) -> list[tuple[str, Path]]:
    """Every file the run was asked to write, with the option that asked."""
    named = [
        ("--behavior-report-json", settings.report_json),
        ("--behavior-report-md", settings.report_md),
        ("--behavior-report-html", settings.report_html),
        ("--behavior-save-baseline", settings.save_baseline),
        ("--behavior-history", settings.history),
        ("--behavior-shard-out", settings.shard_out),
    ]
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        named.append(("GITHUB_STEP_SUMMARY", Path(summary)))
    return [(option, path) for option, path in named if path is not None]


def unwritable(path: Path) -> str | None:
    """Why ``path`` cannot be written (its folders are created as needed), or None."""
    if path.is_dir():
        return "it is a folder; name a file"
    if path.exists():
        return None if os.access(path, os.W_OK) else "the file is not writable"
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is a file, not a folder"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"the folder {ancestor} is not writable"
    return None


def output_findings(settings: BehaviorSettings) -> list[Finding]:
    findings = []
    for option, path in output_paths(settings):
        why = unwritable(path)
        problem = None if why is None else f"{option} {path} cannot be written: {why}"
        findings.append(Finding("files", f"{option} {path}", "writable", problem))
    return findings


# -- budgets ----------------------------------------------------------------------


def budget_findings(settings: BehaviorSettings, plan: RunPlan) -> list[Finding]:
    """``--behavior-max-requests`` / ``--behavior-max-cost`` against what the run needs."""
    findings = []
    fix = "raise the limit, select fewer cases (-k, sample:), or see --behavior-dry-run"
    if settings.max_requests is not None:
        over = plan.to_send > settings.max_requests
        findings.append(
            Finding(
                "budget",
                f"--behavior-max-requests {settings.max_requests}",
                f"{plan.to_send} uncached requests",
                f"this run needs {plan.to_send} uncached requests ({plan.cached} of "
                f"{plan.requests} are cached), more than --behavior-max-requests "
                f"{settings.max_requests} allows; {fix}"
                if over
                else None,
            )
        )
    if settings.max_cost is not None:
        unpriced = f" (not priced: {', '.join(sorted(plan.unpriced))})" if plan.unpriced else ""
        over = plan.cost > settings.max_cost
        findings.append(
            Finding(
                "budget",
                f"--behavior-max-cost {settings.max_cost:g}",
                f"estimated ${plan.cost:.4f}{unpriced}",
                f"this run's {plan.to_send} uncached requests are estimated to cost "
                f"${plan.cost:.4f}{unpriced}, more than --behavior-max-cost "
                f"{settings.max_cost:g} allows; {fix}"
                if over
                else None,
            )
        )
    return findings


# -- credentials and endpoints ----------------------------------------------------


def is_loopback(api_base: str | None) -> bool:
    return api_base is not None and urlsplit(api_base).hostname in LOOPBACK_HOSTS


def missing_key_variables(litellm_model: str, api_base: str | None) -> list[str]:
    """The API-key variables litellm reads for this model's provider that are not set.

    Empty where no key is needed: a loopback server, or a provider whose key is
    optional (litellm reports none missing for it).
    """
    if is_loopback(api_base):
        return []  # the client passes a placeholder key (client._placeholder_key)
    from pytest_behavior.fetch.litellm_api import import_litellm

    if litellm_model.partition("/")[0] in OTHER_CREDENTIALS:
        return []
    litellm = import_litellm()
    try:
        found = litellm.validate_environment(model=litellm_model, api_base=api_base)
    except Exception:  # an unknown provider: its first request says why (stopping.py)
        return []
    if not isinstance(found, dict) or found.get("keys_in_environment"):
        return []
    missing = found.get("missing_keys") or []
    # Only the key variables: a base URL variable is optional where api_base is given.
    return [str(name) for name in missing if "KEY" in str(name) or "TOKEN" in str(name)]


def credential_finding(model: str, endpoint: Endpoint) -> Finding:
    missing = missing_key_variables(endpoint.litellm_model, endpoint.api_base)
    if not missing:
        found = "no key needed (loopback)" if is_loopback(endpoint.api_base) else "key set"
        return Finding("credentials", model, found)
    # Where litellm names several (GOOGLE_API_KEY, GEMINI_API_KEY), any one will do.
    names = " or ".join(missing)
    return Finding(
        "credentials",
        model,
        "missing",
        f"{names} is not set: {model} needs it to call {endpoint.describe()}; "
        f"export {missing[0]}=... (in CI: from a secret), or point --behavior-api-base "
        "at a server that needs no key",
    )


def endpoint_finding(api_base: str, timeout: float = CONNECT_TIMEOUT) -> Finding:
    """One TCP connect to the endpoint's host and port: listening, refused, or unknown."""
    parts = urlsplit(api_base if "://" in api_base else f"http://{api_base}")
    host = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = None
    if not host or port is None:
        return Finding(
            "endpoint",
            api_base,
            "not a URL",
            f"--behavior-api-base {api_base!r} is not a URL; write e.g. http://127.0.0.1:8000/v1",
        )
    fix = "start the server, or fix --behavior-api-base"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except socket.gaierror:
        return Finding(
            "endpoint", api_base, "unknown host", f"cannot resolve {host} in {api_base}; {fix}"
        )
    except ConnectionRefusedError:
        return Finding(
            "endpoint",
            api_base,
            "refused",
            f"nothing is listening at {api_base} (connection refused); {fix}",
        )
    except TimeoutError:
        return Finding(
            "endpoint",
            api_base,
            "no answer",
            f"{api_base} did not accept a connection within {timeout:g} s; {fix}",
        )
    except OSError as error:
        return Finding(
            "endpoint", api_base, "unreachable", f"cannot connect to {api_base}: {error}; {fix}"
        )
    return Finding("endpoint", api_base, "listening")


def sending_findings(endpoints: Iterable[tuple[str, Endpoint]]) -> list[Finding]:
    """Credentials per model, then one connect per distinct endpoint URL."""
    findings = []
    bases: dict[str, None] = {}
    for model, endpoint in endpoints:
        findings.append(credential_finding(model, endpoint))
        if endpoint.api_base:
            bases[endpoint.api_base] = None
    findings += [endpoint_finding(base) for base in bases]
    return findings


def findings_lines(preflight: Preflight) -> list[str]:
    """The dry run's report: one line per check, problems marked."""
    lines = []
    for finding in preflight.findings:
        mark = "PROBLEM" if finding.problem is not None else "ok"
        lines.append(f"{mark:7} {finding.check:11} {finding.line}")
    if not lines:
        lines.append("nothing to check")
    return lines
