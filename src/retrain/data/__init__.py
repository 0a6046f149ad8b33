"""The data contract: the schema, reading and writing files, windows and holdouts, the demo
simulator, ingest from a warehouse."""
