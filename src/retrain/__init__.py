"""Keep a tabular classifier fit for production as labelled batches arrive."""

__version__ = "0.1.0"
