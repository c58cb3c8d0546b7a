"""The batch-inference job for real on a local Ray (CPU profile) over generated data."""

import json
import random
import time
from pathlib import Path

import pandas as pd
import pytest

from workloads.batch import __main__ as cli
from workloads.batch.pipeline import SUMMARY, Summary, plan, run
from workloads.config import BatchJobArgs
from workloads.models import MINILM_DIM

WORDS = ["ray", "gpu", "data", "model", "serve", "kubernetes", "stream", "batch"]


def dataset(path, rows: int, words=(5, 40)) -> set[str]:
    """JSON Lines with malformed rows mixed in; returns the ids that must be quarantined."""
    rng, bad = random.Random(0), set()
    with open(path, "w") as f:
        for i in range(rows):
            if i % 97 == 3:
                f.write(f'{{"id": {i}, "text": "unterminated\n')
                bad.add(None)  # no id can be parsed from a broken line
            elif i % 97 == 5:
                f.write(json.dumps({"id": i}) + "\n")
                bad.add(str(i))
            elif i % 97 == 7:
                f.write(json.dumps({"id": i, "text": " \t "}) + "\n")
                bad.add(str(i))
            elif i % 97 in (9, 11):  # present, but not text
                f.write(json.dumps({"id": i, "text": None if i % 97 == 9 else 42}) + "\n")
                bad.add(str(i))
            else:
                text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(*words)))
                f.write(json.dumps({"id": i, "text": text}) + "\n")
    return bad


@pytest.fixture(scope="module")
def embedding_run(ray_session, tmp_path_factory):
    folder = tmp_path_factory.mktemp("embed")
    bad = dataset(folder / "in.jsonl", 2000)
    args = BatchJobArgs(input=str(folder / "in.jsonl"), output=str(folder / "out"), profile="cpu", chunk_chars=100)
    return args, run(args), bad


def test_embedding_job_accounts_for_every_row(embedding_run):
    args, summary, _ = embedding_run
    assert summary.rows_read == 2000
    assert summary.complete and summary.rows_written + summary.rows_quarantined == 2000
    assert summary.chunks_written > summary.rows_written  # long texts were chunked
    assert json.loads(Path(args.output, SUMMARY).read_text())["complete"] is True
    assert any("MapBatches(Embedder)" in line and "rows/s" in line for line in summary.throughput)


def test_embeddings_have_the_model_dimension(embedding_run):
    args, _, _ = embedding_run
    results = pd.read_parquet(f"{args.output}/results")
    assert {len(v) for v in results["embedding"]} == {MINILM_DIM}
    assert results.groupby("source_id")["chunk_index"].apply(lambda s: sorted(s) == list(range(len(s)))).all()


def test_quarantine_holds_exactly_the_bad_rows_with_reasons(embedding_run):
    args, summary, bad = embedding_run
    quarantine = pd.read_parquet(f"{args.output}/quarantine")
    assert len(quarantine) == summary.rows_quarantined
    assert {None if pd.isna(i) else i for i in quarantine["source_id"]} == bad
    reasons = quarantine["error"].tolist()
    assert sum(r.startswith("invalid JSON") for r in reasons) == 21  # i % 97 == 3 for i < 2000
    assert sum(r == "missing 'text'" for r in reasons) == 21
    assert sum(r == "'text' is null, not text" for r in reasons) == 21
    assert sum(r == "'text' is int, not text" for r in reasons) == 21
    assert sum(r == "'text' is empty" for r in reasons) == 21
    assert quarantine["raw"].notna().all()  # enough to replay the row


def test_a_rerun_over_the_same_output_replaces_it(embedding_run):
    args, first, _ = embedding_run
    again = run(args)
    assert (again.chunks_written, again.rows_quarantined) == (first.chunks_written, first.rows_quarantined)
    assert len(pd.read_parquet(f"{args.output}/results")) == first.chunks_written  # no duplicates


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


def test_llm_job_generates_for_every_good_row(ray_session, tmp_path, tiny_llm):
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


def test_cli_help_and_exit_status(monkeypatch, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0 and "--input" in capsys.readouterr().out
    lost = Summary(rows_read=10, rows_written=8, rows_quarantined=1, chunks_written=8, seconds=1.0)
    monkeypatch.setattr("workloads.batch.pipeline.run", lambda args: lost)
    assert cli.main(["--input", "in.jsonl", "--output", "out", "--profile", "cpu"]) == 1
    assert "rows were lost" in capsys.readouterr().err
