"""litellm itself: imported quietly on first use, and what its responses say.

Everything that touches litellm's module or reads its response objects, for the
client (chat completions), exact scoring and raw-text prompts alike. Importing
this module costs nothing: litellm loads on the first ``import_litellm()`` call.
"""

from __future__ import annotations

import gc
import os
import re
import sys
import warnings
from typing import Any

from pytest_behavior.values import Answer

_READONLY_MESSAGE = r".*`ReadOnly` qualifier"
# The entry warnings.filterwarnings makes of the filter below (message compiled with re.I).
_READONLY_FILTER = ("ignore", re.compile(_READONLY_MESSAGE, re.I), UserWarning, None, 0)


def import_litellm() -> Any:
    """Import litellm quietly and without network access to its cost map."""
    loaded: Any = sys.modules.get("litellm")
    if loaded is None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        with warnings.catch_warnings():
            # pydantic warns about litellm's own types at import; not the user's concern.
            warnings.simplefilter("ignore")
            import litellm

        # The import leaves ~300k objects (modules, pydantic schemas) that live as long
        # as the process; every full garbage collection would walk them again, pytest's
        # two at session end included (0.7 s). The permanent generation skips them.
        gc.freeze()
        loaded = litellm
    # pydantic warns about litellm's own types when they are first used. Another
    # catch_warnings (pytest's, per test) may have dropped the filter since; adding
    # it only when missing spares every request the warnings module's cache reset.
    if _READONLY_FILTER not in warnings.filters:
        warnings.filterwarnings("ignore", message=_READONLY_MESSAGE, category=UserWarning)
    loaded.suppress_debug_info = True
    return loaded


def answer_from_response(response: Any) -> Answer:
    """Reduce a litellm ModelResponse to the text and top logprobs scoring needs."""
    choice = response.choices[0]
    message = getattr(choice, "message", None)
    text = getattr(message, "content", None) or getattr(choice, "text", None) or ""
    logprobs = getattr(choice, "logprobs", None)
    content = response_field(logprobs, "content")
    top: tuple[tuple[tuple[str, float], ...], ...] | None = None
    if content:
        top = tuple(
            tuple(
                (str(response_field(alt, "token")), float(response_field(alt, "logprob")))
                for alt in (response_field(position, "top_logprobs") or [])
            )
            or (
                (
                    str(response_field(position, "token")),
                    float(response_field(position, "logprob")),
                ),
            )
            for position in content
        )
    return Answer(
        text=str(text),
        top_logprobs=top,
        finish_reason=getattr(choice, "finish_reason", None),
        serving_stack=serving_stack_of(response),
        cost=response_cost(response),
    )


# A fingerprint is a short id ("fp_44709d6fcb", llama.cpp's "b11434-..."); anything
# longer is cut, so a chatty server cannot bloat every cached answer.
SERVING_STACK_CHARACTERS = 100


def serving_stack_of(response: Any) -> str | None:
    """What the response says serves the model: its ``system_fingerprint``, if any."""
    value = response_field(response, "system_fingerprint")
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:SERVING_STACK_CHARACTERS]


def response_cost(response: Any) -> float | None:
    """What litellm priced the call at (USD), where it knows the model's price."""
    hidden = getattr(response, "_hidden_params", None)
    cost = hidden.get("response_cost") if isinstance(hidden, dict) else None
    return float(cost) if isinstance(cost, int | float) and cost > 0 else None


def response_field(obj: Any, name: str) -> Any:
    """A field of a response part, whether litellm gave an object or a dict."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)
