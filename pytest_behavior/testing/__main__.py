"""``python -m pytest_behavior.testing``: serve the test model until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from .responders import deterministic_choice
from .server import ModelServer
from .writer import dataset_writer


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_behavior.testing",
        description="Serve the pytest-behavior test model on loopback, speaking a provider's "
        "protocol (OpenAI-compatible by default).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--seed", type=int, default=0, help="seed of the deterministic answers")
    parser.add_argument(
        "--responder",
        choices=("choice", "writer"),
        default="choice",
        help="choice: pick one of the listed answers (default); writer: also write and "
        "judge datasets for `python -m pytest_behavior generate`",
    )
    parser.add_argument(
        "--dialect",
        choices=("compatible", "openai", "vllm", "anthropic"),
        default="compatible",
        help="the provider protocol to speak (default %(default)s: OpenAI-compatible, "
        "serving everything); anthropic serves /v1/messages at the bare URL",
    )
    parser.add_argument(
        "--api-key", default=None, help="the key requests must carry (default: any, or none)"
    )
    options = parser.parse_args(argv)

    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    responder = (
        dataset_writer(options.seed)
        if options.responder == "writer"
        else deterministic_choice(options.seed)
    )
    server = ModelServer(
        responder,
        latency=options.latency,
        host=options.host,
        port=options.port,
        dialect=options.dialect,
        api_key=options.api_key,
    )
    try:
        server.start()
    except OSError as error:
        print(f"cannot serve on {options.host}:{options.port}: {error}", file=sys.stderr)
        return 1
    with server:
        where = server.url if server.dialect.messages else server.api_base
        speaking = "" if options.dialect == "compatible" else f", speaking {options.dialect}"
        print(f"pytest-behavior test model server on {where}{speaking}", flush=True)
        # A timed wait lets the main thread run the signal handlers promptly.
        while not stop_requested.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
