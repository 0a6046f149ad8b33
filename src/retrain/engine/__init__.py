"""Where the heavy work on a batch runs: in this process, or on a Dask cluster."""
