"""Batch inference with Ray Data: `python -m workloads.batch --help`."""
