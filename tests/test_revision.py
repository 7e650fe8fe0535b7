"""Model revisions: NAME@REVISION, and the revision an endpoint reports in /v1/models."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_behavior.fetch.revision import (
    ModelName,
    reported_revision,
    served_id,
    served_revision,
    split_revision,
)
from pytest_behavior.testing import ModelServer

# -- NAME@REVISION ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "name", "revision"),
    [
        ("hosted_vllm/my-finetune", "hosted_vllm/my-finetune", None),
        ("hosted_vllm/my-finetune@ckpt-1200", "hosted_vllm/my-finetune", "ckpt-1200"),
        ("my-finetune@v2", "my-finetune", "v2"),
        # The last '@' splits; the others are part of the name.
        ("openai/a@b@ckpt-3", "openai/a@b", "ckpt-3"),
        # A '/' after the '@' makes it part of the name.
        ("openai/foo@bar/baz", "openai/foo@bar/baz", None),
        ("cloudflare/@cf/meta/llama", "cloudflare/@cf/meta/llama", None),
    ],
)
def test_split_revision(model: str, name: str, revision: str | None) -> None:
    assert split_revision(model) == ModelName(name, revision)


@pytest.mark.parametrize("model", ["hosted_vllm/my-finetune@", "my-finetune@  ", "a@b@"])
def test_an_empty_revision_says_what_to_write(model: str) -> None:
    with pytest.raises(ValueError, match="no revision after '@'") as caught:
        split_revision(model)
    assert "NAME@REVISION, e.g. hosted_vllm/my-finetune@ckpt-1200" in str(caught.value)


def test_an_empty_name_is_refused() -> None:
    with pytest.raises(ValueError, match="no name before '@'"):
        split_revision("@ckpt-1200")


@pytest.mark.parametrize(
    ("litellm_model", "expected"),
    [
        ("hosted_vllm/my-finetune", "my-finetune"),
        ("openai/org/model", "org/model"),
        ("my-finetune", "my-finetune"),
        ("odd/", "odd/"),
    ],
)
def test_served_id_strips_one_provider_segment(litellm_model: str, expected: str) -> None:
    assert served_id(litellm_model) == expected


# -- reading a /models listing ----------------------------------------------------------


def entry(model_id: Any, root: Any = None) -> dict[str, Any]:
    listed: dict[str, Any] = {"id": model_id, "object": "model"}
    if root is not None:
        listed["root"] = root
    return listed


def test_the_entry_matching_the_served_id_is_the_one_read() -> None:
    listing = {
        "object": "list",
        "data": [entry("other", "/models/other-7"), entry("my-finetune", "/models/ckpt-1200")],
    }
    assert reported_revision(listing, "hosted_vllm/my-finetune") == "/models/ckpt-1200"
    assert reported_revision(listing, "hosted_vllm/nobody") is None


def test_a_lone_entry_stands_for_the_model_whatever_its_id() -> None:
    listing = {"object": "list", "data": [entry("served-as-something-else", "/models/ckpt-9")]}
    assert reported_revision(listing, "hosted_vllm/my-finetune") == "/models/ckpt-9"


@pytest.mark.parametrize(
    "listing",
    [
        None,
        [],
        "a string",
        {"object": "list"},
        {"data": "not a list"},
        {"data": []},
        {"data": ["not an entry"]},
        {"data": [entry("my-finetune")]},  # no root
        {"data": [entry("my-finetune", "")]},
        {"data": [entry("my-finetune", 1200)]},  # not a string
        {"data": [entry("/models/ckpt-1200", "/models/ckpt-1200")]},  # root is the id
    ],
)
def test_listings_without_a_revision(listing: Any) -> None:
    assert reported_revision(listing, "hosted_vllm/my-finetune") is None


# -- served_revision against the loopback model server --------------------------------


def test_the_served_root_is_the_revision() -> None:
    with ModelServer(model_root="/models/ckpt-1200") as server:
        assert served_revision(server.api_base, "hosted_vllm/whatever") == "/models/ckpt-1200"


def test_no_root_no_revision(server: ModelServer) -> None:
    assert served_revision(server.api_base, "hosted_vllm/my-finetune") is None


def test_a_redeployed_checkpoint_reports_its_new_root(server: ModelServer) -> None:
    server.served_models = ("my-finetune", "other")
    server.model_root = "/models/ckpt-1200"
    assert served_revision(server.api_base, "hosted_vllm/my-finetune") == "/models/ckpt-1200"
    server.model_root = "/models/ckpt-1300"
    assert served_revision(server.api_base + "/", "hosted_vllm/my-finetune") == "/models/ckpt-1300"
    # Among several models, only the named one counts.
    assert served_revision(server.api_base, "hosted_vllm/unlisted") is None


def test_a_stopped_server_is_no_revision() -> None:
    server = ModelServer(model_root="/models/ckpt-1200").start()
    api_base = server.api_base
    server.stop()  # connections are now refused
    assert served_revision(api_base, "hosted_vllm/my-finetune", timeout=2.0) is None


def test_a_missing_endpoint_is_no_revision(server: ModelServer) -> None:
    server.model_root = "/models/ckpt-1200"
    assert served_revision(server.url + "/nowhere", "hosted_vllm/my-finetune") is None  # 404
    # 200, but a single model object rather than a listing.
    assert served_revision(server.api_base + "/models/x", "hosted_vllm/x") is None


def test_unusable_addresses_are_no_revision() -> None:
    assert served_revision("not a url", "hosted_vllm/my-finetune") is None
    assert served_revision("ftp://127.0.0.1/v1", "hosted_vllm/my-finetune") is None


def test_the_server_lists_models_in_vllm_format() -> None:
    with ModelServer(model_root="/models/ckpt-1200", served_models=("my-finetune",)) as server:
        listing = httpx.get(server.api_base + "/models", timeout=5).json()
    assert listing["object"] == "list"
    [listed] = listing["data"]
    assert listed["id"] == "my-finetune"
    assert listed["object"] == "model"
    assert listed["root"] == "/models/ckpt-1200"


# -- what is sent, and endpoints that misbehave -----------------------------------------


@dataclass
class Scripted:
    """What the scripted endpoint answers, and the headers it was sent."""

    status: int = 200
    body: bytes = b'{"object": "list", "data": [{"id": "m", "root": "/models/r"}]}'
    hang: bool = False
    location: str | None = None
    headers: list[dict[str, str]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def scripted() -> Iterator[tuple[str, Scripted]]:
    """A bare HTTP endpoint answering every GET as ``Scripted`` says; yields its base URL."""
    script = Scripted()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            script.headers.append(dict(self.headers.items()))
            if script.hang:
                script.release.wait(30)
                return
            self.send_response(script.status)
            if script.location is not None:
                self.send_header("Location", script.location)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(script.body)))
            self.end_headers()
            self.wfile.write(script.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", script
    finally:
        script.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_the_key_is_sent_as_a_bearer_token_only_when_given(
    scripted: tuple[str, Scripted],
) -> None:
    api_base, script = scripted
    assert served_revision(api_base, "openai/m") == "/models/r"
    assert served_revision(api_base, "openai/m", api_key="sk-secret") == "/models/r"
    without, with_key = script.headers
    assert "Authorization" not in without
    assert with_key["Authorization"] == "Bearer sk-secret"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b"<html>not json</html>"),
        (200, b'{"data": [{"id": "m", "root": "/models/r"'),  # cut short
        (401, b'{"data": [{"id": "m", "root": "/models/r"}]}'),
        (500, b'{"error": {"message": "boom"}}'),
    ],
)
def test_bad_answers_are_no_revision(
    scripted: tuple[str, Scripted], status: int, body: bytes
) -> None:
    api_base, script = scripted
    script.status, script.body = status, body
    assert served_revision(api_base, "openai/m", api_key="sk-secret") is None


def test_a_redirect_is_not_followed(scripted: tuple[str, Scripted]) -> None:
    api_base, script = scripted
    script.status, script.location = 302, api_base + "/elsewhere"
    # Following it would ask the same endpoint again and read the listing.
    assert served_revision(api_base, "openai/m", api_key="sk-secret") is None
    assert len(script.headers) == 1


def test_only_http_urls_are_read(tmp_path: Path) -> None:
    listing = tmp_path / "v1" / "models"
    listing.parent.mkdir()
    listing.write_text('{"data": [{"id": "m", "root": "/models/r"}]}')
    assert served_revision(f"file://{tmp_path}/v1", "openai/m") is None


def test_an_endpoint_that_never_answers_is_no_revision(scripted: tuple[str, Scripted]) -> None:
    api_base, script = scripted
    script.hang = True
    assert served_revision(api_base, "openai/m", timeout=0.2) is None


@pytest.mark.parametrize(
    ("model", "name", "revision"),
    [
        ("vertex_ai/claude-3-5-haiku@20241022", "vertex_ai/claude-3-5-haiku@20241022", None),
        (
            "vertex_ai/semantic-ranker-default@latest",
            "vertex_ai/semantic-ranker-default@latest",
            None,
        ),
        ("text-unicorn@001", "text-unicorn@001", None),
        (
            "vertex_ai/claude-3-5-haiku@20241022@ckpt-2",
            "vertex_ai/claude-3-5-haiku@20241022",
            "ckpt-2",
        ),
        ("hosted_vllm/tuned@1200", "hosted_vllm/tuned", "1200"),
        ("gpt-4o-mini@ckpt-1", "gpt-4o-mini", "ckpt-1"),
    ],
)
def test_vertex_versions_stay_part_of_the_name(model: str, name: str, revision: str | None) -> None:
    assert split_revision(model) == ModelName(name, revision)
