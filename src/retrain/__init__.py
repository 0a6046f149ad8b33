"""Keep a tabular classifier fit for production as labelled batches arrive."""

__version__ = "0.1.0"

from retrain.execution import one_malloc_arena_for_dask

one_malloc_arena_for_dask()
