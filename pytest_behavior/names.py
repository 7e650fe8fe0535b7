"""The words a spec and the options accept: standard library only, no dataclasses.

Settings are built at ``pytest_configure`` on every pytest run, specs or not, so
what they check against lives here rather than in values.py, whose dataclasses
cost a few milliseconds to create (values.py re-exports these names).
"""

from __future__ import annotations

# What a trait may ask for; see verdicts/scoring.py for what each measures.
SCORING_MODES = ("auto", "logprob", "exact", "topk", "generate")
# How an answer was actually obtained and read: one of these per trait and model.
SCORING_METHODS = ("exact", "topk", "generate")
# The choice sets a trait may score among (Trait.choices).
CHOICE_SETS = ("listed", "labelled")
# How a trait's prompt is sent (spec/prompt_format.py): chat messages the server wraps
# in the model's chat template, or raw text to the completions endpoint.
PROMPT_FORMATS = ("chat", "text")
# Models named local/... are served by the embedded runtime (see local/model.py).
LOCAL_PREFIX = "local/"
