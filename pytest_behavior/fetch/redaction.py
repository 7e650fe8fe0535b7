"""Credentials removed from every message the plugin prints or stores.

A provider's error can echo the API key (``Incorrect API key provided: sk-...``)
or the request headers; such text reaches the terminal, the JSON report and
JUnit. Each message passes through a :class:`Redactor` first, which puts
``[redacted]`` in place of:

* the values of credential variables in the environment (:func:`secret_values`),
  as they are, stripped, URL-encoded and JSON-escaped;
* the value after an ``Authorization``, ``api-key``/``api_key``/``x-api-key``,
  ``access_token``, ``client_secret``, ``password`` ... header, keyword or
  JSON/dict key (a scheme such as ``Bearer`` is kept), a URL's ``?key=`` and a
  URL's ``user:password@``;
* token-shaped strings of well-known providers (OpenAI and Anthropic ``sk-``,
  Hugging Face ``hf_``, GitHub ``ghp_``/``github_pat_``, AWS ``AKIA``, Google
  ``AIza``, Groq, xAI, Replicate, Slack, JWTs, PEM private keys), whether or not
  they are set in this environment.

Everything else is kept, so the message still reads. Where two findings
overlap, their union is redacted, so a secret containing another is never left
half shown. Every pattern is linear (no nested quantifiers, and a pattern that
can fail after a long scan only starts where its run of characters starts), so
a megabyte of text costs a few passes over it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TypeVar, cast
from urllib.parse import quote

REDACTED = "[redacted]"

# An environment variable holds a credential when a part of its name (split at
# anything but letters and digits), less a plural "S", is or ends in one of these:
# OPENAI_API_KEY, WATSONX_APIKEY, HF_TOKEN, PGPASSWORD, GOOGLE_APPLICATION_CREDENTIALS.
# This errs towards redacting (VALKEY_HOST, OAUTH_CLIENT_ID match too); a value
# redacted needlessly costs a word of a message, a leaked one costs a key.
_NAME_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH")
# Credentials litellm reads under names without those words.
_SECRET_NAMES = frozenset(
    {
        "ALERTING_WEBHOOK_URL",
        "DATABASE_URL",
        "DATABASE_URL_READ_REPLICA",
        "DIRECT_URL",
        "GENERIC_LOGGER_HEADERS",
        "LITELLM_LICENSE",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_HEADERS",
        "REDIS_URL",
        "SLACK_WEBHOOK_URL",
        "SNOWFLAKE_JWT",
    }
)
# Shorter values are too likely to occur in a message by chance ("1", "true", "gpt-4").
MIN_SECRET_LENGTH = 8
# Words that are settings, never secrets (the short ones already fall under the length).
_PLAIN_WORDS = frozenset({"true", "false", "none", "null", "enabled", "disabled", "undefined"})

# Keys whose value is a credential, as a header (``x-api-key: ...``), keyword
# (``api_key=...``) or JSON/dict key (``"api_key": "..."``); a prefix such as
# ``x-``, ``openai_`` or ``x-goog-`` may come before.
_KEY_NAMES = r"""
    authorization
  | api[-_]?key
  | (?:access|refresh|session|security|auth|bearer)[-_]?token
  | client[-_]?secret
  | secret[-_]?(?:access[-_]?)?key
  | private[-_]?key
  | password
  | passwd
"""
# Authorization schemes, kept in front of the redacted credential.
_SCHEMES = (
    r"(?:bearer|basic|token|digest|bot|key|apikey|sharedkey|hmac|aws4-hmac-sha256"
    r"|negotiate|ntlm|oauth)[ \t]+"
)
_KEYED_VALUE = re.compile(
    rf"""
    (?<![A-Za-z0-9])(?:{_KEY_NAMES})
    \\?["']?[ \t]{{0,8}}[:=][ \t]{{0,8}}
    (?:
        \\?["'](?>(?:{_SCHEMES})?)(?P<quoted>[^"'\\\r\n]+)      # quoted: up to the closing quote
      | (?>(?:{_SCHEMES})?)(?P<bare>[^\s"'\\,;&<>()\[\]{{}}]+)  # bare: up to a space or delimiter
    )
    """,
    re.IGNORECASE | re.VERBOSE,
)
_URL_SECRET = re.compile(
    r"""
    ://[^\s/?#@:]*:(?P<password>[^\s/?#@]++)@              # scheme://user:password@host
  | [?&;](?:key|token|sig|signature)=(?P<query>[^&#\s"'<>]+)  # ?key=... (Gemini), SAS sig=...
    """,
    re.IGNORECASE | re.VERBOSE,
)
_TOKEN = re.compile(
    r"""
    (?<![A-Za-z0-9])
    (?: sk-[A-Za-z0-9_*-]{16,}                  # OpenAI sk-, sk-proj-; Anthropic sk-ant-
      | hf_[A-Za-z0-9]{20,}                     # Hugging Face
      | gh[pousr]_[A-Za-z0-9]{20,}              # GitHub classic, OAuth, app tokens
      | github_pat_[A-Za-z0-9_]{20,}            # GitHub fine-grained
      | (?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Z])   # AWS access key id
      | AIza[0-9A-Za-z_-]{35}                   # Google API key
      | gsk_[A-Za-z0-9]{20,}                    # Groq
      | xai-[A-Za-z0-9]{20,}                    # xAI
      | r8_[A-Za-z0-9]{20,}                     # Replicate
      | pplx-[A-Za-z0-9]{20,}                   # Perplexity
      | xox[abeprs]-[A-Za-z0-9-]{10,}           # Slack
    )
  | (?<![A-Za-z0-9_.-])eyJ[A-Za-z0-9_-]{8,}+\.eyJ[A-Za-z0-9_-]{8,}+\.[A-Za-z0-9_-]*  # JWT
  | -----BEGIN[A-Z ]{0,40}PRIVATE\ KEY-----(?P<pem>[^-]++)  # PEM body, even if cut short
    """,
    re.VERBOSE,
)
# Values a keyed pattern finds that are no credential: ``api_key=None``, or one
# already redacted (so redacting twice changes nothing).
_NOT_CREDENTIALS = frozenset({"none", "null", "nil", "true", "false", "undefined"})
# Nor is a placeholder in advice (``export OPENAI_API_KEY=...``, ``api_key=<your key>``):
# blanking it out would turn the fix into "[redacted]". (Not ``$NAME``: a password may
# begin with a dollar sign.)
_PLACEHOLDER = re.compile(r"\.{3,}|…|<[^<>]*>")

_T = TypeVar("_T")


def is_secret_name(name: str) -> bool:
    """Whether an environment variable of this name holds a credential (see above)."""
    upper = name.upper()
    if upper in _SECRET_NAMES:
        return True
    for part in re.findall(r"[A-Z0-9]+", upper):
        stem = part[:-1] if part.endswith("S") else part
        if stem.endswith(_NAME_WORDS):
            return True
    return False


def is_secret_value(value: str) -> bool:
    """Whether a credential variable's value is worth redacting.

    Not when shorter than ``MIN_SECRET_LENGTH`` once stripped, a boolean or null
    word, or the absolute path of an existing file or directory
    (``GOOGLE_APPLICATION_CREDENTIALS``, ``SSH_AUTH_SOCK``: the path is no secret,
    and a message naming it should still say which file).
    """
    stripped = value.strip()
    if len(stripped) < MIN_SECRET_LENGTH or stripped.lower() in _PLAIN_WORDS:
        return False
    return not (os.path.isabs(stripped) and os.path.exists(stripped))


def secret_values(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The values of the credential variables in ``environ`` (``os.environ`` now)."""
    environ = os.environ if environ is None else environ
    return frozenset(
        value for name, value in environ.items() if is_secret_name(name) and is_secret_value(value)
    )


def _spellings(value: str) -> Iterator[str]:
    """``value`` as a message may quote it: as is, stripped, URL-encoded, JSON-escaped."""
    yield value
    yield value.strip()
    yield quote(value, safe="")
    yield quote(value, safe="/")
    yield json.dumps(value)[1:-1]
    yield json.dumps(value, ensure_ascii=False)[1:-1]


class Redactor:
    """Redacts a fixed set of secret values, and the credential patterns, from text.

    Build one per run (:meth:`from_environment`) and call it on every message.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = frozenset(secret for secret in secrets if secret)
        needles = {form for secret in self.secrets for form in _spellings(secret) if form}
        self._needles = tuple(sorted(needles, key=lambda needle: (-len(needle), needle)))

    @classmethod
    def from_environment(
        cls, extra: Iterable[str] = (), *, environ: Mapping[str, str] | None = None
    ) -> Redactor:
        """The credential variables' values, and ``extra`` (e.g. a configured key).

        ``extra`` follows the environment's rule (:func:`is_secret_value`), so a
        placeholder such as ``api_key="EMPTY"`` does not blank the word out.
        """
        extras = {value for value in extra if is_secret_value(value)}
        return cls(secret_values(environ) | extras)

    def __call__(self, text: str) -> str:
        spans = sorted(self._spans(text))
        if not spans:
            return text
        pieces: list[str] = []
        kept = 0  # text[:kept] is dealt with
        for start, end in spans:
            if end <= kept:
                continue
            if start > kept or not pieces:  # a new span, apart from the last one
                pieces.append(text[kept:start])
                pieces.append(REDACTED)
            kept = end
        pieces.append(text[kept:])
        return "".join(pieces)

    def redact_obj(self, value: _T) -> _T:
        """``value`` with every string in it redacted, through dicts, lists and tuples.

        Dict keys are redacted too; a tuple comes back a plain tuple; anything
        else (numbers, None, other objects) is returned as it is.
        """
        return cast(_T, self._walk(value))

    def _walk(self, value: object) -> object:
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self._walk(key): self._walk(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._walk(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self._walk(item) for item in value)
        return value

    def _spans(self, text: str) -> Iterator[tuple[int, int]]:
        for needle in self._needles:
            start = text.find(needle)
            while start != -1:
                yield start, start + len(needle)
                start = text.find(needle, start + len(needle))
        for match in _KEYED_VALUE.finditer(text):
            group = "quoted" if match.group("quoted") is not None else "bare"
            found = match.group(group)
            if (
                found.lower() not in _NOT_CREDENTIALS
                and not found.startswith(REDACTED[:-1])
                and not _PLACEHOLDER.fullmatch(found)
            ):
                yield match.span(group)
        for match in _URL_SECRET.finditer(text):
            group = "password" if match.group("password") is not None else "query"
            if not match.group(group).startswith(REDACTED[:-1]):
                yield match.span(group)
        for match in _TOKEN.finditer(text):
            yield match.span("pem") if match.group("pem") is not None else match.span()


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with ``secrets`` (longest first) and the credential patterns redacted."""
    return Redactor(secrets)(text)


def redact_obj(value: _T, secrets: Iterable[str] = ()) -> _T:
    """``value`` with every string in it redacted (see :meth:`Redactor.redact_obj`)."""
    return Redactor(secrets).redact_obj(value)
