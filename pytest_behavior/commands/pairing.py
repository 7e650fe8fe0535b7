"""Which model of the reference file each model of the current file is compared with.

A run with ``--behavior-baseline`` compares a result with the baseline's result of
the same trait, preferring the same model and spec (baseline.baseline_reference).
The ``compare`` command does the same per pair of models: a model with the same
name, else the one ``--model-map OLD=NEW`` names, else, when the reference holds a
single model (a checkpoint against the next one), that model. A model that none of
these pairs is listed, not guessed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_behavior.commands.common import CommandError
from pytest_behavior.outcomes import TraitResult


@dataclass(frozen=True)
class ModelPairing:
    # current model -> the reference model it is compared with
    counterparts: Mapping[str, str]
    # What was paired automatically, and what could not be: said on the terminal.
    notes: tuple[str, ...] = ()


def model_map_entry(text: str) -> tuple[str, str]:
    """``--model-map OLD=NEW`` as (OLD, NEW); argparse reports a malformed one."""
    old, equals, new = text.partition("=")
    if not equals or not old.strip() or not new.strip():
        raise argparse.ArgumentTypeError(
            f"expected OLD=NEW (a model of the reference file = a model of the current "
            f"file), e.g. openai/ckpt-1000=openai/ckpt-2000; got {text!r}"
        )
    return old.strip(), new.strip()


def pair_models(
    reference_models: Sequence[str],
    current_models: Sequence[str],
    model_map: Sequence[tuple[str, str]],
    *,
    reference_path: Path,
    current_path: Path,
) -> ModelPairing:
    fix = (
        f"write --model-map OLD=NEW, OLD a model of {reference_path} and NEW one of {current_path}"
    )
    counterparts: dict[str, str] = {}
    for old, new in model_map:
        if old not in reference_models:
            raise CommandError(
                reference_path,
                f"--model-map {old}={new}: it holds no model {old} "
                f"(it holds {_names(reference_models)}); {fix}",
            )
        if new not in current_models:
            raise CommandError(
                current_path,
                f"--model-map {old}={new}: it holds no model {new} "
                f"(it holds {_names(current_models)}); {fix}",
            )
        if new in counterparts:
            raise CommandError(
                current_path, f"--model-map pairs {new} twice; give each model one OLD={new}"
            )
        counterparts[new] = old
    notes: list[str] = []
    for model in current_models:
        if model in counterparts:
            continue
        if model in reference_models:
            counterparts[model] = model
        elif len(reference_models) == 1:
            counterparts[model] = reference_models[0]
            notes.append(
                f"{reference_path} holds one model, {reference_models[0]}: "
                f"{model} in {current_path} is compared with it, trait by trait"
            )
        else:
            notes.append(
                f"{model} in {current_path}: not compared, {reference_path} holds no model "
                f"of that name (it holds {_names(reference_models)}); "
                f"pair it with --model-map OLD={model}"
            )
    if not counterparts:
        raise CommandError(
            current_path,
            f"no model in common with {reference_path} ({reference_path} holds "
            f"{_names(reference_models)}, this file {_names(current_models)}); {fix}",
        )
    unused = [model for model in reference_models if model not in counterparts.values()]
    if unused:
        notes.append(f"in {reference_path} only, not compared: {_names(unused)}")
    return ModelPairing(counterparts=counterparts, notes=tuple(notes))


def reference_lookup(
    reference: Sequence[TraitResult], pairing: ModelPairing, reference_path: Path
) -> Callable[[TraitResult], tuple[TraitResult, str] | None]:
    """For compare.compare_all: a current result's reference, as a baseline run finds it
    (baseline.baseline_reference), among the results of its counterpart model only."""
    from pytest_behavior.verdicts.baseline import baseline_reference

    by_model = {
        current: baseline_reference(
            [result for result in reference if result.model == counterpart], reference_path
        )
        for current, counterpart in pairing.counterparts.items()
    }

    def reference_for(result: TraitResult) -> tuple[TraitResult, str] | None:
        lookup = by_model.get(result.model)
        return None if lookup is None else lookup(result)

    return reference_for


def _names(models: Sequence[str]) -> str:
    return ", ".join(models) if models else "no model"
