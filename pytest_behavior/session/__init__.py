"""A pytest session's behavior run: collection, the run's lifecycle, finishing, xdist, signals."""
