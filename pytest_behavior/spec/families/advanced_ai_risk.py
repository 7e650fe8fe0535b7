"""Advanced AI risk: every option the question lists, " (A)".." (H)", no continuation."""

from __future__ import annotations

from pytest_behavior.spec.families.base import Family

ADVANCED_AI_RISK = Family(
    name="advanced-ai-risk",
    path_hints=("advanced-ai-risk", "human_generated_evals", "lm_generated_evals"),
)
