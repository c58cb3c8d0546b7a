"""The batch-inference pipeline on Ray Data, streamed end to end:

    read (Parquet | JSON Lines) -> preprocess (CPU tasks: parse, clean, chunk) -> model stage
    (an autoscaling actor pool: MiniLM embeddings, or vLLM through Ray Data LLM) -> Parquet

Rows that cannot be parsed or preprocessed are never dropped: they go to `<output>/quarantine`
with the reason. `<output>/_SUMMARY.json` is written last, so a run that died half-way never
looks complete, and a re-run over the same output replaces it.
"""

import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import pandas as pd
import ray
from pyarrow import fs
from ray.data import ActorPoolStrategy, Dataset, SaveMode, TaskPoolStrategy

from workloads.config import CPU_ENGINE, BatchJobArgs
from workloads.models import load_minilm

RESULTS, QUARANTINE, SUMMARY = "results", "quarantine", "_SUMMARY.json"
RAW_LINE = "_line"  # a JSON Lines row before parsing
OUTPUT_COLUMNS = ["source_id", "chunk_index", "text", "error", "raw"]


def _is_jsonl(path: str) -> bool:
    if path.endswith((".jsonl", ".json")):
        return True
    if path.endswith(".parquet"):
        return False
    filesystem, root = fs.FileSystem.from_uri(path)
    names = [i.path for i in filesystem.get_file_info(fs.FileSelector(root, recursive=True)) if i.is_file]
    return any(n.endswith((".jsonl", ".json")) for n in names)


def read(args: BatchJobArgs) -> Dataset:
    # On a laptop a whole CPU per read task can starve everything else on 2 cores.
    remote_args = args.actor_options(laptop_cpus=0.25)
    if _is_jsonl(args.input):
        # Lines as text: one bad line must become one quarantined row, not a failed read.
        lines = ray.data.read_text(args.input, file_extensions=["jsonl", "json"], **remote_args)
        data = lines.rename_columns({"text": RAW_LINE})
    else:
        data = ray.data.read_parquet(args.input, **remote_args)
    # A file is one block: the stages would take it in turn, each holding all of it. Blocks of about
    # a model batch of documents let them overlap, and bound what is in flight.
    return data.repartition(target_num_rows_per_block=args.model.batch_size)


def chunks(text: str, size: int) -> list[str]:
    """Split on whitespace into pieces of at most `size` characters (a longer word is cut)."""
    pieces, current = [], ""
    for word in text.split(" "):
        while len(word) > size:
            pieces += [current] if current else []
            pieces.append(word[:size])
            current, word = "", word[size:]
        candidate = f"{current} {word}" if current else word
        if len(candidate) > size:
            pieces.append(current)
            candidate = word
        current = candidate
    return pieces + ([current] if current else [])


def _record(row: dict, args: BatchJobArgs) -> tuple[dict | None, str | None, str]:
    """(parsed record, error, raw text) of one input row."""
    if RAW_LINE in row:
        raw = row[RAW_LINE]
        try:
            record = json.loads(raw)
        except ValueError as exc:
            return None, f"invalid JSON: {exc}", raw
        if not isinstance(record, dict):
            return None, f"expected a JSON object, got {type(record).__name__}", raw
        return record, None, raw
    return row, None, json.dumps(row, default=str)


def preprocess(batch: pd.DataFrame, args: BatchJobArgs) -> pd.DataFrame:
    """Parse, validate, clean and chunk; failed rows carry `error` instead of being dropped."""
    out = []
    for row in batch.to_dict("records"):
        record, error, raw = _record(row, args)
        source_id = None if record is None else record.get(args.id_column)
        text = None if record is None else record.get(args.text_column)
        if error is None and (source_id is None or (isinstance(source_id, float) and pd.isna(source_id))):
            error = f"missing {args.id_column!r}"
        elif error is None and args.text_column not in record:
            error = f"missing {args.text_column!r}"
        elif error is None and not isinstance(text, str):
            error = f"{args.text_column!r} is {'null' if text is None else type(text).__name__}, not text"
        if error is None:
            text = re.sub(r"\s+", " ", re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", " ", text)).strip()
            if not text:
                error = f"{args.text_column!r} is empty"
            elif len(text) > args.max_text_chars:
                error = f"{args.text_column!r} holds {len(text)} characters; at most {args.max_text_chars}"
        if error is not None:
            out.append(
                {
                    "source_id": None if source_id is None else str(source_id),
                    "chunk_index": -1,
                    "text": None,
                    "error": error,
                    "raw": raw,
                }
            )
            continue
        for i, piece in enumerate(chunks(text, args.chunk_chars)):
            out.append({"source_id": str(source_id), "chunk_index": i, "text": piece, "error": None, "raw": None})
    return pd.DataFrame(out, columns=OUTPUT_COLUMNS)


class Embedder:
    """Model-stage actor: MiniLM embeddings of a batch of chunks."""

    def __init__(self, device: str):
        self.model = load_minilm(device)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        vectors = self.model.encode(batch["text"].tolist(), normalize_embeddings=True, convert_to_numpy=True)
        # Plain float lists, not Ray's tensor extension type: any Parquet reader (a vector DB loader) takes them.
        return batch[["source_id", "chunk_index", "text"]].assign(embedding=vectors.tolist())


def embed(good: Dataset, args: BatchJobArgs) -> Dataset:
    return good.map_batches(
        Embedder,
        fn_constructor_kwargs={"device": args.device(args.num_gpus)},
        batch_size=args.model.batch_size,
        batch_format="pandas",
        compute=ActorPoolStrategy(min_size=args.model.min_actors, max_size=args.model.max_actors),
        **args.actor_options(args.num_gpus, laptop_cpus=0.5),
    )


def generate(good: Dataset, args: BatchJobArgs) -> Dataset:
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig

    cpu = args.profile == "cpu"
    engine = {
        "tensor_parallel_size": args.tensor_parallel_size,
        "pipeline_parallel_size": args.pipeline_parallel_size,
        "load_format": args.load_format,  # streamed: Ray Data LLM copies only the config and tokenizer
    }
    small = {"num_cpus": 0.1}
    config = vLLMEngineProcessorConfig(
        model_source=args.model_source,
        engine_kwargs={**engine, **CPU_ENGINE, "max_model_len": 1024} if cpu else engine,
        batch_size=args.model.batch_size,
        concurrency=(args.model.min_actors, args.model.max_actors),
        # On a laptop the defaults reserve more CPUs than there are and the stages deadlock.
        **(
            {
                "placement_group_config": {"bundles": [{"CPU": 0.5}]},
                "chat_template_stage": small,
                "tokenize_stage": small,
                "detokenize_stage": small,
            }
            if cpu
            else {}
        ),
    )
    processor = build_processor(
        config,
        preprocess=lambda row: {
            **row,
            "messages": [{"role": "user", "content": args.prompt.format(text=row["text"])}],
            "sampling_params": {"max_tokens": args.max_tokens, "temperature": 0},
        },
        postprocess=lambda row: {
            "source_id": row["source_id"],
            "chunk_index": row["chunk_index"],
            "text": row["text"],
            "generated_text": row["generated_text"],
            "num_input_tokens": row["num_input_tokens"],
            "num_generated_tokens": row["num_generated_tokens"],
        },
    )
    return processor(good)


Between = Callable[[Dataset], Dataset]  # applied where one stage ends and the next begins


def streamed(data: Dataset) -> Dataset:
    return data


def plan(args: BatchJobArgs, between: Between = streamed) -> tuple[Dataset, Dataset]:
    """The results and quarantine datasets (lazy: nothing runs until they are consumed).
    `between=Dataset.materialize` runs the stages one after another (benchmarks/batch.py)."""
    # The split into good and bad rows runs in the preprocessing tasks (same compute and resources:
    # Ray Data fuses them); a task stage of its own would want a whole CPU per task. It does not
    # fuse into the model stage, whose actors must only run the model.
    cpu = {
        "batch_format": "pandas",
        "compute": TaskPoolStrategy(size=args.preprocess_tasks),
        **args.actor_options(laptop_cpus=0.25),
    }
    prepared = between(between(read(args)).map_batches(preprocess, fn_kwargs={"args": args}, **cpu))
    good = prepared.map_batches(lambda b: b[b["error"].isna()].drop(columns=["error", "raw"]), **cpu)
    bad = prepared.map_batches(lambda b: b[b["error"].notna()][["source_id", "error", "raw"]], **cpu)
    model_stage = generate if args.stage == "llm" else embed
    return between(model_stage(good, args)), bad


@dataclass
class Summary:
    rows_read: int
    rows_written: int  # input rows whose every chunk has a result
    rows_quarantined: int
    chunks_written: int
    seconds: float
    throughput: list[str] = field(default_factory=list)  # per operator, from Dataset.stats()

    @property
    def complete(self) -> bool:
        return self.rows_read == self.rows_written + self.rows_quarantined


def _throughput(stats: str) -> list[str]:
    """One line per operator: its name and Ray Data's rows/s for it."""
    lines, operator = [], None
    for line in stats.splitlines():
        if match := re.match(r"\s*Operator \d+ (.+?):", line):
            operator = None if match.group(1).startswith("Write") else match.group(1)  # writes count files
        elif operator and "Ray Data throughput" in line:
            lines.append(f"{operator}: {line.split(':', 1)[1].strip()}")
    return lines


def _count_parquet(path: str, column: str | None = None) -> int:
    filesystem, root = fs.FileSystem.from_uri(path)
    if filesystem.get_file_info(root).type == fs.FileType.NotFound:
        return 0  # an empty dataset writes no files
    # Only the column counted: reading the results back whole would hold every embedding again.
    data = ray.data.read_parquet(path, columns=[column] if column else [])
    return len(set(data.unique(column))) if column else data.count()


def run(args: BatchJobArgs, between: Between = streamed) -> Summary:
    filesystem, root = fs.FileSystem.from_uri(args.output)
    filesystem.create_dir(root, recursive=True)
    marker = f"{root}/{SUMMARY}"
    if filesystem.get_file_info(marker).type != fs.FileType.NotFound:
        filesystem.delete_file(marker)  # the previous run's summary must not vouch for this one

    started = time.monotonic()
    # Results and quarantine are two streaming passes over the input (the quarantine pass stops
    # after the cheap preprocessing); counting reads it a third time and the outputs are read back,
    # so the summary checks what was actually written, not what the pipeline believed it wrote.
    results, quarantine = plan(args, between)
    # Writes as light as the CPU stages on a laptop: a write waiting for a whole CPU lets results pile up.
    write = {"mode": SaveMode.OVERWRITE, "ray_remote_args": args.actor_options(laptop_cpus=0.25)}
    results.write_parquet(f"{args.output}/{RESULTS}", **write)
    quarantine.write_parquet(f"{args.output}/{QUARANTINE}", **write)
    summary = Summary(
        rows_read=read(args).count(),
        rows_written=_count_parquet(f"{args.output}/{RESULTS}", "source_id"),
        rows_quarantined=_count_parquet(f"{args.output}/{QUARANTINE}"),
        chunks_written=_count_parquet(f"{args.output}/{RESULTS}"),
        seconds=round(time.monotonic() - started, 2),
        throughput=_throughput(results.stats()),
    )
    with filesystem.open_output_stream(marker) as out:
        out.write(json.dumps({**asdict(summary), "complete": summary.complete}, indent=2).encode())
    return summary
