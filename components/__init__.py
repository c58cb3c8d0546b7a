"""Pulumi components of rayplane. Nothing here imports Ray, vLLM or torch."""
