"""Splitting a run into shards by request key, and merging the shard files into verdicts."""
