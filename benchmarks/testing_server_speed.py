"""How many requests per second the loopback test model server answers.

``pytest_behavior.testing.ModelServer`` is what every suite test talks to, so its speed
bounds how fast the test suite runs. This sends ``--requests`` chat completions, split
among ``--clients`` threads (one keep-alive connection each), to it and, in the same
run, to a baseline: a plain ``http.server`` with the same threading, keep-alive
and no-Nagle settings that answers every POST with the ModelServer's own answer,
prepared once, so the ratio is the cost of parsing the request and building the
answer. The runs alternate, so other load on the machine hits both, and the table
gives the median of ``--repeat`` runs: seconds, requests/s and the ratio to the
baseline with the same clients.

    .venv/bin/python benchmarks/testing_server_speed.py
    .venv/bin/python benchmarks/testing_server_speed.py --requests 3000 --clients 1 3 8 --repeat 5

(tests/test_testing_server.py once asserted more than 500 requests/s with 3 clients;
on a busy machine that failed for no fault of the server, so the test now checks
only that every request is answered, and the speed is measured here.)
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tabulate import tabulate

from pytest_behavior.testing import ModelServer

QUESTION = 'Is the following statement something you would say?\n"I like rules"'
BODY = json.dumps({"model": "m", "messages": [{"role": "user", "content": QUESTION}]}).encode()
PATH = "/v1/chat/completions"


def send(host: str, port: int) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(host, port, timeout=60)
    try:
        connection.request("POST", PATH, BODY)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@contextmanager
def model_server() -> Iterator[tuple[str, int]]:
    with ModelServer() as server:
        yield server.host, server.port


@contextmanager
def baseline_server(answer: bytes) -> Iterator[tuple[str, int]]:
    class CannedAnswer(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

    httpd = Server(("127.0.0.1", 0), CannedAnswer)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield "127.0.0.1", int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def timed_run(host: str, port: int, requests: int, clients: int) -> float:
    """Seconds for ``clients`` threads to get ``requests`` answers between them."""
    start = threading.Barrier(clients + 1)
    failures: list[str] = []

    def client(count: int) -> None:
        connection = http.client.HTTPConnection(host, port, timeout=60)
        connection.connect()  # outside the timed part, as a keep-alive pool would be
        start.wait()
        try:
            for _ in range(count):
                connection.request("POST", PATH, BODY)
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    failures.append(f"status {response.status}")
        finally:
            connection.close()

    shares = [requests // clients + (i < requests % clients) for i in range(clients)]
    threads = [threading.Thread(target=client, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    start.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1500, help="requests per run")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 3], help="client threads")
    parser.add_argument("--repeat", type=int, default=3, help="runs per server, median kept")
    args = parser.parse_args()
    with model_server() as (host, port):
        status, answer = send(host, port)
    if status != 200:
        raise SystemExit(f"the model server answered {status}: {answer[:200]!r}")
    baseline_name = "http.server, canned answer (baseline)"
    servers: dict[str, Callable[[], Any]] = {
        baseline_name: lambda: baseline_server(answer),
        "ModelServer": model_server,
    }
    table = []
    for clients in args.clients:
        times: dict[str, list[float]] = {name: [] for name in servers}
        for _ in range(args.repeat):
            for name, serve in servers.items():
                with serve() as (host, port):
                    times[name].append(timed_run(host, port, args.requests, clients))
        baseline = args.requests / statistics.median(times[baseline_name])
        for name, runs in times.items():
            wall = statistics.median(runs)
            rate = args.requests / wall
            ratio = rate / baseline
            cells = [f"{wall:.2f}", f"{rate:,.0f}", f"{ratio:.2f}"]
            table.append([clients, name, args.requests, *cells])
    print(
        tabulate(
            table,
            headers=["clients", "server", "requests", "wall s", "requests/s", "vs baseline"],
            disable_numparse=True,
        )
    )
    print(f"(median of {args.repeat} runs each; each client holds one keep-alive connection)")


if __name__ == "__main__":
    main()
