"""The batch-inference job for real on a local Ray (CPU profile) over generated data."""

import json
import random
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workloads.batch import __main__ as cli
from workloads.batch.pipeline import SUMMARY, Summary, plan, run
from workloads.config import BatchJobArgs
from workloads.models import MINILM_DIM

WORDS = ["ray", "gpu", "data", "model", "serve", "kubernetes", "stream", "batch"]


def dataset(path, rows: int, words=(5, 40)) -> tuple[set[str | None], Counter]:
    """JSON Lines with corrupt rows mixed in: invalid JSON, a truncated last line, wrong types, empty
    text, 1 MiB texts, blank lines. Returns the ids that must be quarantined and the reasons."""
    rng, bad, reasons = random.Random(0), set(), Counter()

    def corrupt(line: str, source_id, reason: str) -> None:
        f.write(line + "\n")
        bad.add(source_id)
        reasons[reason] += 1

    with open(path, "w") as f:
        for i in range(rows):
            kind = i % 97
            if kind == 3:
                corrupt(f'{{"id": {i}, "text": "unterminated', None, "invalid JSON")
            elif kind == 5:
                corrupt(json.dumps({"id": i}), str(i), "missing 'text'")
            elif kind == 7:
                corrupt(json.dumps({"id": i, "text": " \t "}), str(i), "'text' is empty")
            elif kind == 9:
                corrupt(json.dumps({"id": i, "text": None}), str(i), "'text' is null, not text")
            elif kind == 11:
                corrupt(json.dumps({"id": i, "text": 42}), str(i), "'text' is int, not text")
            elif kind == 13:
                corrupt(
                    json.dumps({"id": i, "text": "x" * 2**20}),
                    str(i),
                    "'text' holds 1048576 characters; at most 262144",
                )
            elif kind == 15:
                corrupt("[1, 2]", None, "expected a JSON object, got list")
            elif kind == 17:
                f.write("\n")  # a blank line is no row (JSON Lines)
            else:
                text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(*words)))
                f.write(json.dumps({"id": i, "text": text}) + "\n")
        f.write(f'{{"id": {rows}, "te')  # cut off mid-row, no newline
    bad.add(None)
    reasons["invalid JSON"] += 1
    return bad, reasons


@pytest.fixture(scope="module")
def embedding_run(ray_session, tmp_path_factory):
    folder = tmp_path_factory.mktemp("embed")
    bad, reasons = dataset(folder / "in.jsonl", ROWS)
    args = BatchJobArgs(input=str(folder / "in.jsonl"), output=str(folder / "out"), profile="cpu", chunk_chars=100)
    return args, run(args), bad, reasons


ROWS = 1000  # lines: 11 of them blank, and a truncated last one


def test_embedding_job_accounts_for_every_row(embedding_run, figures):
    args, summary, _, reasons = embedding_run
    assert summary.rows_read == ROWS - 11 + 1
    assert summary.complete and summary.rows_written + summary.rows_quarantined == summary.rows_read
    assert summary.rows_quarantined == sum(reasons.values())
    figures["batch_corrupt"] = {
        "rows_read": summary.rows_read,
        "rows_written": summary.rows_written,
        "rows_quarantined": summary.rows_quarantined,
        "chunks_written": summary.chunks_written,
        "reasons": dict(reasons),
    }
    assert summary.chunks_written > summary.rows_written  # long texts were chunked
    assert json.loads(Path(args.output, SUMMARY).read_text())["complete"] is True
    assert any("MapBatches(Embedder)" in line and "rows/s" in line for line in summary.throughput)


def test_embeddings_have_the_model_dimension(embedding_run):
    args, _, _, _ = embedding_run
    results = pd.read_parquet(f"{args.output}/results")
    assert {len(v) for v in results["embedding"]} == {MINILM_DIM}
    assert results.groupby("source_id")["chunk_index"].apply(lambda s: sorted(s) == list(range(len(s)))).all()


def test_quarantine_holds_exactly_the_bad_rows_with_reasons(embedding_run):
    args, summary, bad, reasons = embedding_run
    quarantine = pd.read_parquet(f"{args.output}/quarantine")
    assert len(quarantine) == summary.rows_quarantined
    assert {None if pd.isna(i) else i for i in quarantine["source_id"]} == bad
    found = Counter("invalid JSON" if r.startswith("invalid JSON") else r for r in quarantine["error"])
    assert found == reasons
    assert quarantine["raw"].notna().all()  # enough to replay the row


def test_a_rerun_over_the_same_output_replaces_it_with_the_same(embedding_run):
    args, first, _, _ = embedding_run
    key, columns = ["source_id", "chunk_index"], ["source_id", "chunk_index", "text"]
    before = pd.read_parquet(f"{args.output}/results").sort_values(key, ignore_index=True)
    held = pd.read_parquet(f"{args.output}/quarantine").sort_values("raw", ignore_index=True)
    again = run(args)
    assert (again.chunks_written, again.rows_quarantined) == (first.chunks_written, first.rows_quarantined)
    after = pd.read_parquet(f"{args.output}/results").sort_values(key, ignore_index=True)
    assert before[columns].equals(after[columns])  # no duplicates, nothing else
    assert np.allclose(np.stack(before["embedding"]), np.stack(after["embedding"]), atol=1e-5)
    assert held.equals(pd.read_parquet(f"{args.output}/quarantine").sort_values("raw", ignore_index=True))


def test_execution_streams(ray_session, tmp_path):
    """The first result arrives long before the input is fully read and preprocessed."""
    import ray

    dataset(tmp_path / "in.jsonl", 3000)
    args = BatchJobArgs(input=str(tmp_path / "in.jsonl"), output=str(tmp_path / "out"), profile="cpu")
    ray.data.DataContext.get_current().target_max_block_size = 64 * 1024  # many small blocks
    results, _ = plan(args)
    started = time.monotonic()
    first = None
    for _ in results.iter_batches(batch_size=None):
        first = first or time.monotonic() - started
    total = time.monotonic() - started
    assert first < total / 2, f"first batch after {first:.1f}s of {total:.1f}s"


def test_llm_job_generates_for_every_good_row(ray_session, tmp_path, tiny_llm, weights_streamed):
    rows = [{"id": i, "text": f"Document {i} about Ray Data and GPUs."} for i in range(30)]
    rows.append({"id": 30, "text": None})
    pd.DataFrame(rows).to_parquet(tmp_path / "in.parquet")
    args = BatchJobArgs(
        input=str(tmp_path / "in.parquet"),
        output=str(tmp_path / "out"),
        stage="llm",
        model_source=tiny_llm,
        max_tokens=8,
        profile="cpu",
    )
    summary = run(args)
    assert (summary.rows_read, summary.rows_written, summary.rows_quarantined) == (31, 30, 1)
    results = pd.read_parquet(f"{args.output}/results")
    assert len(results) == 30 and (results["generated_text"].str.len() > 0).all()
    assert (results["num_generated_tokens"] > 0).all() and (results["num_generated_tokens"] <= 8).all()
    assert (results["num_input_tokens"] > 0).all()
    assert weights_streamed(tiny_llm)  # Ray Data LLM hands the load format to vLLM too


def test_cli_help_and_exit_status(monkeypatch, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0 and "--input" in capsys.readouterr().out
    lost = Summary(rows_read=10, rows_written=8, rows_quarantined=1, chunks_written=8, seconds=1.0)
    monkeypatch.setattr("workloads.batch.pipeline.run", lambda args: lost)
    assert cli.main(["--input", "in.jsonl", "--output", "out", "--profile", "cpu"]) == 1
    assert "rows were lost" in capsys.readouterr().err
