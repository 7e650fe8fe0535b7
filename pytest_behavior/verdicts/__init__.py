"""Answers -> scores -> verdicts: scoring, results, integrity checks, sampling,
comparisons and baselines."""
