"""lm-eval's command line, with its ``gguf`` model's log-likelihood calls timed.

Runs in lm-eval's own virtualenv (``benchmarks/.venv-lmeval``), started by
``benchmarks/lm_eval_agreement.py`` with lm-eval's usual arguments. It writes the
seconds spent answering requests (the harness's import, dataset and task setup
left out) and their count as JSON to the file named by ``$PB_HARNESS_TIMING``, so
the agreement table can compare time per item with the plugin's own request time.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from lm_eval.__main__ import cli_evaluate
from lm_eval.models import gguf

_original = gguf.GGUFLM.loglikelihood
_spent = {"seconds": 0.0, "requests": 0}


def _timed_loglikelihood(self: Any, requests: Any, disable_tqdm: bool = False) -> Any:
    start = time.perf_counter()
    try:
        return _original(self, requests, disable_tqdm=disable_tqdm)
    finally:
        _spent["seconds"] += time.perf_counter() - start
        _spent["requests"] += len(requests)
        target = os.environ.get("PB_HARNESS_TIMING")
        if target:
            with open(target, "w", encoding="utf-8") as stream:
                json.dump(_spent, stream)


gguf.GGUFLM.loglikelihood = _timed_loglikelihood  # type: ignore[method-assign]

if __name__ == "__main__":
    cli_evaluate()
