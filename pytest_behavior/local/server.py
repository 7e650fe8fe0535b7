"""OpenAI-compatible HTTP server for a base GGUF model, behind ``--behavior-model=local/...``.

``python -m pytest_behavior.local.server --model PATH --port N`` serves
``/v1/chat/completions``, ``/v1/completions`` (with ``echo`` for prompt
log-probabilities, echo.py), ``/v1/models``, ``/health``, and the plugin's own
exact-scoring route ``/v1/continuation_logprobs`` (continuations.py).

Why not ``python -m llama_cpp.server`` (measured, llama-cpp-python 0.3.36, Gemma 3
270M, 2 cores): its chat endpoint always applies a chat template, while a base
model needs raw text; it reuses the previous request's KV prefix, so logprobs
depend on request order (0.008 nats on persona items' first token, 0.3 with
``echo``); its logprobs need ``logits_all=True`` and sort the 262k vocabulary in
Python per token: 2 s per 5-token request, against 0.2 s here with
``numpy.argpartition``; and it needs fastapi and uvicorn.

Every request clears the KV cache and evaluates its prompt from position 0 in the
same batches, so a prompt gets bit-identical logprobs (with any thread count)
whatever came before. Decoding is greedy at temperature 0 (what the plugin asks
for when it scores), so answers are reproducible; at a temperature above 0 (the
generate command's T=1.4, ``samples: K``) tokens are sampled from the
temperature-scaled distribution within the ``top_p`` nucleus, seeded by the
request's ``seed`` (reproducible) or, without one, by fresh entropy as hosted
providers do (sampling.py). Message contents reach
the model as raw text, joined by a blank line. One request runs at a time: a
llama.cpp context is not thread-safe.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import llama_cpp
import numpy as np
import numpy.typing as npt

from pytest_behavior import wire
from pytest_behavior.local.continuations import (
    ContinuationScore,
    answer_positions,
    continuation_completion,
    decode_rows,
)
from pytest_behavior.local.echo import (
    EchoedToken,
    decode_all_positions,
    echo_completion,
    echoed_tokens,
    top_k,
)
from pytest_behavior.local.exact import CONTINUATION_ROUTE
from pytest_behavior.wire import JsonObject, RequestError

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


@dataclass(frozen=True)
class TokenLogprob:
    text: str
    raw: bytes
    logprob: float


@dataclass(frozen=True)
class GeneratedToken:
    chosen: TokenLogprob
    top: tuple[TokenLogprob, ...]


@dataclass(frozen=True)
class Generation:
    text: str
    tokens: tuple[GeneratedToken, ...]
    finish_reason: str
    prompt_tokens: int


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    max_tokens: int
    stop: tuple[str, ...]
    top_logprobs: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None


class ModelRunner:
    """Raw-text generation with per-token top-k logprobs on one llama.cpp context."""

    def __init__(self, model_path: Path, *, n_ctx: int, n_threads: int) -> None:
        self._llm = llama_cpp.Llama(
            model_path=str(model_path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            logits_all=False,  # we read the last row ourselves; all rows cost n_ctx x vocab
            verbose=False,
        )
        self._vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
        self._n_vocab = int(self._llm.n_vocab())
        self._n_ctx = n_ctx
        self._pieces: dict[int, bytes] = {}
        self._lock = threading.Lock()

    def generate(self, request: GenerationRequest) -> Generation:
        prompt = self._llm.tokenize(request.prompt.encode("utf-8"), add_bos=True, special=False)
        if len(prompt) + request.max_tokens > self._n_ctx:
            raise RequestError(f"{len(prompt)} prompt tokens + max_tokens exceed {self._n_ctx}")
        with self._lock:
            self._evaluate_from_empty_cache(prompt)
            return self._decode(request, len(prompt))

    def echo(
        self, prompt_text: str, *, top: int, max_tokens: int
    ) -> tuple[list[EchoedToken], Generation]:
        """Every prompt token's log-probability, then up to ``max_tokens`` generated greedily."""
        prompt = self._llm.tokenize(prompt_text.encode("utf-8"), add_bos=True, special=False)
        if len(prompt) + max_tokens > self._n_ctx:
            raise RequestError(f"{len(prompt)} prompt tokens + max_tokens exceed {self._n_ctx}")
        bos = int(self._llm.token_bos())
        with self._lock:
            self._clear_cache()
            rows = decode_all_positions(
                self._llm.ctx, prompt, n_vocab=self._n_vocab, batch_size=int(self._llm.n_batch)
            )
            echoed = echoed_tokens(
                prompt, rows, self._piece, top=top, skip_first=bool(prompt) and prompt[0] == bos
            )
            generation = Generation("", (), "length", len(prompt))
            if max_tokens > 0:
                # Llama.eval continues from n_tokens: tell it what the cache now holds.
                self._llm.input_ids[: len(prompt)] = prompt
                self._llm.n_tokens = len(prompt)
                request = GenerationRequest(prompt_text, max_tokens, (), top)
                generation = self._decode(request, len(prompt))
        return echoed, generation

    def continuation(self, prompt_text: str, continuation: str) -> ContinuationScore:
        """The log-probability of ``continuation`` after ``prompt_text``, as the echo path
        gives it, computing only the rows it reads (see continuations.py)."""
        whole = prompt_text + continuation
        tokens = self._llm.tokenize(whole.encode("utf-8"), add_bos=True, special=False)
        if len(tokens) > self._n_ctx:
            raise RequestError(f"{len(tokens)} prompt tokens exceed {self._n_ctx}")
        skip_first = bool(tokens) and tokens[0] == int(self._llm.token_bos())
        positions = answer_positions(
            tokens, self._piece, skip_first=skip_first, start=len(prompt_text), end=len(whole)
        )
        if not positions or positions[0] == 0:
            raise RequestError(f"no log-probability for the tokens of {continuation!r}")
        with self._lock:
            self._clear_cache()
            rows = decode_rows(
                self._llm.ctx,
                tokens,
                [position - 1 for position in positions],
                n_vocab=self._n_vocab,
                batch_size=int(self._llm.n_batch),
            )
        # Summed in the order and type the echo client sums them: the same float.
        logprob = sum(float(rows[position - 1][tokens[position]]) for position in positions)
        return ContinuationScore(continuation, float(logprob), len(positions), len(tokens))

    def _decode(self, request: GenerationRequest, n_prompt: int) -> Generation:
        from pytest_behavior.local.sampling import TokenSampler

        sampler = TokenSampler.for_request(request.temperature, request.top_p, request.seed)
        tokens: list[GeneratedToken] = []
        raw, finish = b"", "length"
        for _ in range(request.max_tokens):
            logprobs = self._next_token_logprobs()
            token = sampler.choose(logprobs)
            if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                finish = "stop"
                break
            tokens.append(self._describe(token, logprobs, request.top_logprobs))
            raw += self._piece(token)
            if first_stop(raw.decode("utf-8", "replace"), request.stop) is not None:
                finish = "stop"
                break
            self._llm.eval([token])
        text = raw.decode("utf-8", "replace")
        return Generation(text[: first_stop(text, request.stop)], tuple(tokens), finish, n_prompt)

    def _evaluate_from_empty_cache(self, prompt: Sequence[int]) -> None:
        self._clear_cache()
        self._llm.eval(prompt)

    def _clear_cache(self) -> None:
        # Clearing the whole memory (not only trimming positions) also resets where
        # cells land in the cache, which changes the float summation order.
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self._llm.ctx), True)
        self._llm.reset()  # type: ignore[no-untyped-call, unused-ignore]

    def _next_token_logprobs(self) -> npt.NDArray[np.float64]:
        pointer = llama_cpp.llama_get_logits_ith(self._llm.ctx, -1)
        logits = np.ctypeslib.as_array(pointer, shape=(self._n_vocab,)).astype(np.float64)
        peak = float(logits.max())
        return logits - (peak + float(np.log(np.exp(logits - peak).sum())))

    def _describe(self, token: int, logprobs: npt.NDArray[np.float64], k: int) -> GeneratedToken:
        top = tuple(self._entry(other, logprobs) for other in top_k(logprobs, k))
        return GeneratedToken(self._entry(token, logprobs), top)

    def _entry(self, token: int, logprobs: npt.NDArray[np.float64]) -> TokenLogprob:
        raw = self._piece(token)
        return TokenLogprob(raw.decode("utf-8", "replace"), raw, float(logprobs[token]))

    def _piece(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            buffer = ctypes.create_string_buffer(64)
            size = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, 64, 0, False)
            if size < 0:  # the piece is longer than the buffer; -size is what it needs
                buffer = ctypes.create_string_buffer(-size)
                size = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, -size, 0, False)
            piece = buffer.raw[:size]
            self._pieces[token] = piece
        return piece


def first_stop(text: str, stops: Sequence[str]) -> int | None:
    hits = [text.find(stop) for stop in stops if stop and stop in text]
    return min(hits) if hits else None


def parse_generation(body: JsonObject, prompt: str, top_logprobs: int) -> GenerationRequest:
    wire.refuse_streaming(body)
    if body.get("n", 1) != 1:
        raise RequestError("only n=1 is supported", param="n")
    max_tokens = wire.max_tokens(body)
    stop = body.get("stop") or ()
    stops = (stop,) if isinstance(stop, str) else tuple(stop)
    temperature, top_p, seed = wire.sampling_fields(body)
    return GenerationRequest(
        prompt, max_tokens, tuple(str(s) for s in stops), top_logprobs, temperature, top_p, seed
    )


def chat_prompt(body: JsonObject) -> str:
    """The messages' texts as raw text, joined by a blank line (a base model, no template)."""
    messages = wire.chat_messages(body)
    return "\n\n".join(wire.message_text(message.get("content")) for message in messages)


def chat_completion(runner: ModelRunner, alias: str, body: JsonObject) -> JsonObject:
    top = wire.chat_top_count(body)
    generation = runner.generate(parse_generation(body, chat_prompt(body), top or 0))
    logprobs = None
    if top is not None:
        logprobs = wire.chat_logprobs([chat_token(token) for token in generation.tokens])
    choice = wire.chat_choice(generation.text, logprobs, generation.finish_reason)
    return wire.chat_completion(alias, [choice], generation_usage(generation))


def chat_token(token: GeneratedToken) -> JsonObject:
    return wire.chat_token(as_logprob(token.chosen), [as_logprob(other) for other in token.top])


def as_logprob(token: TokenLogprob) -> wire.Logprob:
    return wire.Logprob(token.text, token.logprob, token.raw)


def text_completion(runner: ModelRunner, alias: str, body: JsonObject) -> JsonObject:
    prompts = wire.echo_prompts(body)
    if prompts is not None:
        return echo_completion(runner, alias, body, prompts)
    prompt = wire.completion_prompt(body)
    top = wire.legacy_top_count(body)
    generation = runner.generate(parse_generation(body, prompt, top or 0))
    logprobs = legacy_logprobs(generation, len(prompt)) if top is not None else None
    choice = wire.text_choice(0, generation.text, logprobs, generation.finish_reason)
    return wire.text_completion(alias, [choice], generation_usage(generation))


def legacy_logprobs(generation: Generation, prompt_length: int) -> JsonObject:
    """Generated tokens in the legacy shape; offsets count from the prompt's start."""
    tokens = [t.chosen.text for t in generation.tokens]
    return wire.legacy_logprobs(
        tokens,
        [t.chosen.logprob for t in generation.tokens],
        [{o.text: o.logprob for o in t.top} for t in generation.tokens],
        wire.text_offsets(tokens, prompt_length),
    )


def generation_usage(generation: Generation) -> dict[str, int]:
    return wire.usage(generation.prompt_tokens, len(generation.tokens))


Route = Callable[[ModelRunner, str, JsonObject], JsonObject]

POST_ROUTES: dict[str, Route] = {
    "/v1/chat/completions": chat_completion,
    "/v1/completions": text_completion,
    # The plugin's own exact scoring (local/exact.py): only the rows it reads.
    CONTINUATION_ROUTE: continuation_completion,
}


class ModelHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], runner: ModelRunner, alias: str) -> None:
        super().__init__(address, ModelRequestHandler)
        self.runner = runner
        self.alias = alias


class ModelRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as litellm's HTTP client expects
    disable_nagle_algorithm = True  # otherwise each response waits ~40 ms for a delayed ACK
    server: ModelHTTPServer

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path in ("/health", "/v1/health"):
            self._send(200, {"status": "ok"})
        elif path in ("/v1/models", "/models"):
            self._send(200, wire.models_body([wire.model_object(self.server.alias, "local")]))
        else:
            self._send(404, wire.error_body(f"no route for GET {path}", wire.error_type(404)))

    def do_POST(self) -> None:
        route = POST_ROUTES.get(self.path.split("?", 1)[0])
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if route is None:
            message = f"no route for POST {self.path}"
            self._send(404, wire.error_body(message, wire.error_type(404)))
            return
        try:
            body = wire.parse_body(raw)
            self._send(200, route(self.server.runner, self.server.alias, body))
        except RequestError as exc:
            self._send(exc.status, wire.request_error_body(exc))
        except (ValueError, TypeError) as exc:  # a field of the wrong type deeper in
            self._send(400, wire.error_body(str(exc), wire.error_type(400)))
        except Exception as exc:  # a server fault must still answer, not drop the connection
            self.log_error("internal error: %r", exc)
            self._send(500, wire.error_body(repr(exc), "server_error"))

    def _send(self, status: int, payload: JsonObject) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def exit_with_parent(parent_pid: int, use_pdeathsig: bool) -> None:
    """Make this server die with the process that started it, however that one ends."""
    if use_pdeathsig and sys.platform.startswith("linux"):
        # Immediate on Linux, but it fires when the starting *thread* ends, so the
        # parent asks for it only when it starts us from its main thread.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    threading.Thread(target=_exit_on_stdin_eof, daemon=True).start()
    threading.Thread(target=_exit_on_reparenting, args=(parent_pid,), daemon=True).start()


def _exit_on_stdin_eof() -> None:
    # The parent holds the write end of our stdin; the kernel closes it when the
    # parent dies, even by SIGKILL.
    with contextlib.suppress(OSError, ValueError):
        while sys.stdin.buffer.read(4096):
            pass
    os._exit(0)


def _exit_on_reparenting(parent_pid: int) -> None:
    # Covers a parent whose stdin pipe leaked into a forked child of its own.
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(0)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pytest_behavior.local.server")
    parser.add_argument("--model", type=Path, required=True, help="path of the GGUF file")
    parser.add_argument("--alias", help="model name to report (default: file stem)")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--n-ctx", type=int, default=4096)
    # Half the cores, at most 4: llama.cpp's threads spin at each barrier, so when
    # pytest or anything else wants a core, one descheduled thread stalls them all
    # (on 2 cores: 1 thread 0.18-0.25 s per request, 2 threads 0.3-2.4 s).
    threads = max(1, min(4, (os.cpu_count() or 2) // 2))
    parser.add_argument("--threads", type=int, default=threads)
    parser.add_argument("--ready-file", type=Path, help="write the bound port here when ready")
    parser.add_argument("--parent-pid", type=int, help="exit when this process ends")
    parser.add_argument("--pdeathsig", action="store_true", help="also use PR_SET_PDEATHSIG")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.parent_pid is not None:
        if os.getppid() != args.parent_pid:
            return 1  # the parent died while we were starting
        exit_with_parent(args.parent_pid, args.pdeathsig)
    runner = ModelRunner(args.model, n_ctx=args.n_ctx, n_threads=args.threads)
    alias = args.alias or args.model.stem
    # Loopback only: the server has no authentication.
    server = ModelHTTPServer(("127.0.0.1", args.port), runner, alias)
    port = server.server_address[1]
    if args.ready_file is not None:
        partial = args.ready_file.with_name(args.ready_file.name + ".partial")
        partial.write_text(str(port), encoding="ascii")
        os.replace(partial, args.ready_file)  # the parent never reads half a port number
    print(f"serving {alias} at http://127.0.0.1:{port}/v1", file=sys.stderr, flush=True)
    with server, contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
