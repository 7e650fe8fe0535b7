"""Credentials never reach a message: env values, auth headers, provider token shapes."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest

from pytest_behavior.fetch.redaction import (
    REDACTED,
    Redactor,
    is_secret_name,
    redact,
    redact_obj,
    secret_values,
)

OPENAI_KEY = "sk-proj-AbCdEf0123456789_xyz-QRStuv"
ANTHROPIC_KEY = "sk-ant-api03-AbCdEf0123456789xyzQRStuvWX-yz_12"


# -- environment values --------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "AZURE_API_KEY",
        "AZURE_AD_TOKEN",
        "AZURE_CLIENT_SECRET",
        "HF_TOKEN",
        "HUGGINGFACE_API_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_BEARER_TOKEN_BEDROCK",
        "GITHUB_TOKEN",
        "LITELLM_MASTER_KEY",
        "DATAROBOT_API_TOKEN",
        "WATSONX_APIKEY",
        "WATSONX_ZENAPIKEY",
        "VERTEXAI_CREDENTIALS",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "PGPASSWORD",
        "REDIS_PASSWORD",
        "SMTP_PASSWD",
        "SNOWFLAKE_JWT",
        "DATABASE_URL",
        "openai_api_key",
        "MY-SERVICE-AUTH",
    ],
)
def test_credential_variable_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "OPENAI_API_BASE",
        "OPENAI_BASE_URL",
        "AZURE_API_VERSION",
        "AWS_REGION_NAME",
        "TOKENIZERS_PARALLELISM",
        "KEYBOARD_LAYOUT",
        "AUTHOR",
        "PATH",
        "HOME",
        "PYTEST_ADDOPTS",
    ],
)
def test_other_variable_names(name: str) -> None:
    assert not is_secret_name(name)


def test_secret_values_keeps_credentials_only(tmp_path: Path) -> None:
    environ = {
        "OPENAI_API_KEY": OPENAI_KEY,
        "MY_PROVIDER_API_KEY": "provider-secret-value",
        "HF_TOKEN": "hf_notreallyatoken1234",
        "OPENAI_API_BASE": "https://api.example.com/v1",  # not a credential name
        "SHORT_TOKEN": "abc1234",  # 7 characters: too likely to occur by chance
        "FEATURE_AUTH": "1",
        "USE_AUTH": "disabled",
        "NULL_SECRET": "null",
        "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path),  # an existing path
        "EMPTY_KEY": "",
    }
    assert secret_values(environ) == {OPENAI_KEY, "provider-secret-value", "hf_notreallyatoken1234"}


def test_secret_values_reads_os_environ_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_PROVIDER_API_KEY", "set-after-import-123")
    assert "set-after-import-123" in secret_values()
    monkeypatch.delenv("SOME_PROVIDER_API_KEY")
    assert "set-after-import-123" not in secret_values()


def test_a_missing_path_is_still_a_secret() -> None:
    # An AWS secret access key may start with "/": only a path that exists is spared.
    value = "/wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    assert secret_values({"AWS_SECRET_ACCESS_KEY": value}) == {value}


def test_environment_values_are_redacted_wherever_they_appear() -> None:
    secret = "a1b2c3d4e5f6-private"  # no provider shape: only the env value finds it
    redactor = Redactor.from_environment(environ={"ACME_API_KEY": secret})
    body = json.dumps({"error": {"message": f"bad credential {secret}", "code": 401}})
    assert redactor(body) == json.dumps(
        {"error": {"message": f"bad credential {REDACTED}", "code": 401}}
    )
    assert redactor(f"token={secret}&x=1") == f"token={REDACTED}&x=1"
    assert redactor(f"prefix{secret}suffix") == f"prefix{REDACTED}suffix"
    assert redactor(f"{secret} and again {secret}") == f"{REDACTED} and again {REDACTED}"


def test_environment_values_are_redacted_encoded() -> None:
    secret = 'ab/cd+ef=gh"ij'
    redactor = Redactor.from_environment(environ={"ACME_SECRET": secret})
    assert redactor(f"url ?sig={quote(secret, safe='')} end") == f"url ?sig={REDACTED} end"
    assert redactor(f"path /v1/{quote(secret)} end") == f"path /v1/{REDACTED} end"
    assert redactor(f"body {json.dumps(secret)} end") == f'body "{REDACTED}" end'


def test_environment_value_with_surrounding_whitespace() -> None:
    redactor = Redactor.from_environment(environ={"ACME_TOKEN": "  value-with-spaces\n"})
    assert redactor("got value-with-spaces here") == f"got {REDACTED} here"


def test_short_environment_values_are_not_redacted() -> None:
    redactor = Redactor.from_environment(environ={"ACME_TOKEN": "true", "ACME_KEY": "gpt-4"})
    text = "use gpt-4: true"
    assert redactor(text) == text


def test_extra_values_follow_the_environment_rule() -> None:
    redactor = Redactor.from_environment(["configured-key-1234", "EMPTY"], environ={})
    assert redactor.secrets == {"configured-key-1234"}
    assert redactor("EMPTY configured-key-1234") == f"EMPTY {REDACTED}"


def test_given_values_are_used_as_they_are() -> None:
    assert redact("pin 4711 here", ["4711"]) == f"pin {REDACTED} here"
    assert redact("nothing to hide", [""]) == "nothing to hide"


def test_longest_secret_first() -> None:
    short, long = "abcdefgh12", "abcdefgh12-and-more-34"
    for secrets in ([short, long], [long, short]):
        assert redact(f"x {long} y {short} z", secrets) == f"x {REDACTED} y {REDACTED} z"


def test_overlapping_secrets_are_both_hidden() -> None:
    first, second = "aaaa-bbbb-1111", "1111-cccc-dddd"
    assert redact("see aaaa-bbbb-1111-cccc-dddd.", [first, second]) == f"see {REDACTED}."


# -- headers and keys ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer xyz123", "Authorization: Bearer [redacted]"),
        (
            "authorization: basic dXNlcjpwYXNz\r\nHost: x",
            "authorization: basic [redacted]\r\nHost: x",
        ),
        ("Authorization: sk-raw-key", "Authorization: [redacted]"),
        ("authorization=Bearer xyz&x=1", "authorization=Bearer [redacted]&x=1"),
        ('"Authorization": "Bearer xyz"', '"Authorization": "Bearer [redacted]"'),
        (
            "{'Authorization': 'Bearer xyz', 'Accept': 'application/json'}",
            "{'Authorization': 'Bearer [redacted]', 'Accept': 'application/json'}",
        ),
        ('"Authorization": "Custom two words"', '"Authorization": "[redacted]"'),
        ('-H "Proxy-Authorization: Basic abc="', '-H "Proxy-Authorization: Basic [redacted]"'),
        ("api-key: xyz", "api-key: [redacted]"),
        ("api_key=xyz, model=gpt", "api_key=[redacted], model=gpt"),
        ("'api_key': 'xyz'", "'api_key': '[redacted]'"),
        ('"x-api-key": "xyz"', '"x-api-key": "[redacted]"'),
        ('"x-goog-api-key":"xyz"', '"x-goog-api-key":"[redacted]"'),
        ("apikey=xyz", "apikey=[redacted]"),
        ("OPENAI_API_KEY=xyz", "OPENAI_API_KEY=[redacted]"),
        ('{\\"api_key\\": \\"xyz\\"}', '{\\"api_key\\": \\"[redacted]\\"}'),
        ("Completion(api_key='xyz', model='m')", "Completion(api_key='[redacted]', model='m')"),
        (
            '{"access_token": "ya29.abc", "expires_in": 3599}',
            '{"access_token": "[redacted]", "expires_in": 3599}',
        ),
        ("client_secret=xyz", "client_secret=[redacted]"),
        ("aws_secret_access_key='xyz'", "aws_secret_access_key='[redacted]'"),
        ("password: hunter2", "password: [redacted]"),
        # A value that only looks like a placeholder inside is still a value.
        ("password=$ecret...x", "password=[redacted]"),
        ("api_key=...abc", "api_key=[redacted]"),
        ("postgres://user:hunter2@db:5432/app", "postgres://user:[redacted]@db:5432/app"),
        (
            "https://host/v1beta/models/gemini:generate?key=xyz&alt=sse",
            "https://host/v1beta/models/gemini:generate?key=[redacted]&alt=sse",
        ),
    ],
)
def test_keyed_values(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Please check your API key and try again.",
        "The key must be set; see the docs for the key format.",
        "The api_key client option must be set either by passing api_key to the client or by setting the OPENAI_API_KEY environment variable",
        "You can find your API key at https://platform.openai.com/account/api-keys.",
        "invalid x-api-key",
        '{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}',
        "Authorization failed for this request",
        "api_key=None",
        '{"api_key": null, "api_key_env": ""}',
        "max_tokens=100, prompt_tokens: 12, keys: 3",
        "model openai/gpt-4o-mini at https://api.example.com:8443/v1",
        "digest 3f8a2c9be1d04f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c",
        "task-1234567890abcdefghij and risk-adjusted-scores-for-everyone",
        "AKIA is not a key; neither is AKIAIOSFODNN7EXAMPLEXYZ",
        # Advice naming the variable, with a placeholder for its value.
        "set OPENAI_API_KEY (export OPENAI_API_KEY=...) and check its value",
        "export ANTHROPIC_API_KEY=… or api_key=<your key>",
    ],
)
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert redact(text) == text


# -- provider token shapes -------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        OPENAI_KEY,
        "sk-AbCdEf0123456789xyzQ",
        "sk-svcacct-AbCdEf0123456789xyz",
        "sk-proj-abc1****************************xyz9",  # already masked by the provider
        ANTHROPIC_KEY,
        "hf_AbCdEfGhIjKlMnOpQrStUvWx",
        "ghp_" + "A1b2" * 9,
        "gho_" + "A1b2" * 9,
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789",
        "AKIAIOSFODNN7EXAMPLE",
        "ASIAIOSFODNN7EXAMPLE",
        "AIzaSyA0123456789abcdefghijklmnopqrstuv",
        "gsk_AbCdEf0123456789xyzQRStuv",
        "xai-AbCdEf0123456789xyzQRStuv",
        "r8_AbCdEf0123456789xyzQRStuv",
        "pplx-AbCdEf0123456789xyzQRStuv",
        "xoxb-123456789012-abcdefghij",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl-_x",
    ],
)
def test_provider_tokens(token: str) -> None:
    assert redact(f"Incorrect API key provided: {token}. Retry.") == (
        f"Incorrect API key provided: {REDACTED}. Retry."
    )
    assert redact(f"({token})") == f"({REDACTED})"


def test_openai_message_still_reads() -> None:
    message = (
        f"Error code: 401 - {{'error': {{'message': 'Incorrect API key provided: {OPENAI_KEY}. "
        "You can find your API key at https://platform.openai.com/account/api-keys.', "
        "'type': 'invalid_request_error', 'code': 'invalid_api_key'}}"
    )
    assert redact(message) == message.replace(OPENAI_KEY, REDACTED)


@pytest.mark.parametrize(
    "text",
    [
        "sk-short",
        "sk-0123456789abcde",  # 15 after sk-
        "hf_tooShort123",
        "ghp_short",
        "eyJhbGciOiJIUzI1NiJ9 without a payload",
        "scikit-learn sk-learn",
    ],
)
def test_token_lookalikes_are_unchanged(text: str) -> None:
    assert redact(text) == text


def test_private_key_body() -> None:
    body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\nBKcwggSjAgEAAoIBAQC7"
    text = f'{{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\n{body}\\n-----END PRIVATE KEY-----\\n"}}'
    redacted = redact(text)
    assert "MIIE" not in redacted
    assert redacted.startswith('{"type": "service_account", "private_key": "')
    assert redacted.endswith('-----END PRIVATE KEY-----\\n"}')
    assert (
        redact("-----BEGIN RSA PRIVATE KEY-----\nMIIEow")
        == f"-----BEGIN RSA PRIVATE KEY-----{REDACTED}"
    )


def test_header_and_env_value_together() -> None:
    redactor = Redactor([OPENAI_KEY])
    text = f"headers={{'Authorization': 'Bearer {OPENAI_KEY}'}} and {OPENAI_KEY}"
    assert redactor(text) == f"headers={{'Authorization': 'Bearer {REDACTED}'}} and {REDACTED}"


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {OPENAI_KEY}",
        f"'Authorization': 'Basic {OPENAI_KEY}'",
        "api_key=xyz api-key: 'abc' password=p",
        f"postgres://u:pw@h/db?key=k {ANTHROPIC_KEY}",
        "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----",
    ],
)
def test_redacting_twice_changes_nothing(text: str) -> None:
    once = redact(text, ["secret-value-1"])
    assert REDACTED in once
    assert redact(once, ["secret-value-1"]) == once


# -- structures ------------------------------------------------------------------


def test_redact_obj_walks_nested_builtins() -> None:
    report = {
        "tests": [
            {"id": "t1", "error": f"Incorrect API key provided: {OPENAI_KEY}", "attempts": 3},
            {"id": "t2", "reasons": ("ok", "api_key=xyz"), "score": 0.5, "passed": True},
        ],
        "env": {"secret-value-1": None},
        "count": 2,
    }
    assert redact_obj(report, ["secret-value-1"]) == {
        "tests": [
            {"id": "t1", "error": f"Incorrect API key provided: {REDACTED}", "attempts": 3},
            {"id": "t2", "reasons": ("ok", f"api_key={REDACTED}"), "score": 0.5, "passed": True},
        ],
        "env": {REDACTED: None},
        "count": 2,
    }
    assert report["count"] == 2  # the input is left as it was
    assert report["tests"][0]["error"].endswith(OPENAI_KEY)  # type: ignore[index]


def test_redactor_redact_obj_uses_its_values() -> None:
    redactor = Redactor.from_environment(environ={"ACME_API_KEY": "acme-secret-42"})
    assert redactor.redact_obj(["x acme-secret-42", 7, None]) == [f"x {REDACTED}", 7, None]
    assert redactor.redact_obj("plain") == "plain"


# -- long input -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "x" * 1_000_000,
        "sk-" * 340_000,
        "_eyJ" * 250_000,
        "eyJ" + "a" * 1_000_000,
        "api_key" + " " * 1_000_000,
        "://a:" * 200_000,
        "-----BEGIN PRIVATE KEY-----" * 40_000,
        "Authorization: Bearer " * 50_000,
        "abcdefgh" * 125_000,
    ],
    ids=["plain", "sk", "jwt-run", "jwt-long", "spaces", "userinfo", "pem", "headers", "needle"],
)
def test_a_megabyte_is_handled(text: str) -> None:
    # Each pattern is linear, so this takes a fraction of a second; a quadratic
    # pattern would take hours here.
    result = redact(text, ["abcdefgh1", "abcdefgh"])
    assert isinstance(result, str)


def test_a_megabyte_keeps_its_content() -> None:
    text = ("ordinary text " * 40_000) + OPENAI_KEY + (" more text" * 40_000)
    assert redact(text) == text.replace(OPENAI_KEY, REDACTED)
