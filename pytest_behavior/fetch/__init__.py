"""Requests -> answers: litellm calls, exact scoring, retries, stopping, budgets and
fetch processes."""
