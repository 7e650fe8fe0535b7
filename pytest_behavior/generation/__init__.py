"""Model-written evaluations (Perez et al. 2022, section 3): a generator writes
statements, a judge filters and labels them, and the kept items are written as a
persona JSONL that a spec's ``source:`` reads.

:mod:`.prompts` holds the paper's wording, :mod:`.parse` turns a completion into
statements, :mod:`.pipeline` runs generate -> parse -> deduplicate -> judge ->
select on the plugin's own client and cache, :mod:`.output` writes the files and
:mod:`.report` says what happened at every stage.
"""
