"""Batch inference over Parquet or JSON Lines with Ray Data (the RayJob entrypoint, and a laptop
command). Prints and writes a summary; exits 1 unless every row read was written or quarantined.

    python -m workloads.batch --input data.jsonl --output out/ --profile cpu
    python -m workloads.batch --config '{"input": "gs://...", "output": "gs://...", "stage": "llm", ...}'
"""

import argparse
import json
import sys

from pydantic import ValidationError

from workloads.config import BatchJobArgs


def parse_args(argv: list[str] | None = None) -> BatchJobArgs:
    parser = argparse.ArgumentParser(
        prog="python -m workloads.batch", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="{}", help="the job's args as JSON (what the RayJob passes)")
    parser.add_argument("--input", help="Parquet or JSON Lines: a path or gs:// prefix")
    parser.add_argument("--output", help="output folder: results/, quarantine/, _SUMMARY.json")
    parser.add_argument("--stage", choices=["embeddings", "llm"], help="model stage (default: embeddings)")
    parser.add_argument("--model-source", help="llm stage: the model's weights")
    parser.add_argument("--profile", choices=["cluster", "cpu"], help="cpu: a laptop without GPUs")
    options = parser.parse_args(argv)
    given = {k: v for k, v in vars(options).items() if k != "config" and v is not None}
    try:
        return BatchJobArgs.model_validate({**json.loads(options.config), **given})
    except (ValueError, ValidationError) as exc:
        parser.error(str(exc))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import ray

    from workloads.batch.pipeline import run

    ray.init(ignore_reinit_error=True)  # joins the RayJob's cluster, or starts a local Ray
    summary = run(args)
    print(f"rows read {summary.rows_read}, written {summary.rows_written}, quarantined {summary.rows_quarantined}")
    print(f"chunks written {summary.chunks_written} in {summary.seconds}s")
    for line in summary.throughput:
        print(f"  {line}")
    if not summary.complete:
        print("ERROR: rows were lost: read != written + quarantined", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
