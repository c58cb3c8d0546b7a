"""Every benchmark at its smallest size, as `make bench` runs it, so none can rot: it runs every
system it compares and reports every ratio. No figure is checked against a number: on a shared
2-core machine only the ratios of one full run (benchmarks/README.md) mean anything."""

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.__main__ import BENCHMARKS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.own_ray
@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_runs_every_system_and_reports_every_ratio(name, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=580,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((tmp_path / f"{name}.json").read_text())
    assert result["ratios"] and all(isinstance(v, float) for v in result["ratios"].values()), result
    # The one-line summary names every ratio.
    [summary] = [line for line in done.stdout.splitlines() if line.startswith(f"{name}: ")]
    assert all(key in summary for key in result["ratios"])


def test_vllms_server_runs_the_engine_ours_runs():
    """The reference server parses (with vLLM's own parser) to the settings the service's engine gets
    on a CPU: eager and float32, not a torch.compile trace that ours never pays for at its start."""
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    from benchmarks.systems import OurService, VllmServer, service_run
    from workloads.serving.llm import llm_config

    ours = OurService(service_run("search-dev", "chat", None))
    server = VllmServer(ours, Path("unused.log"))
    assert server.command[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    parsed = make_arg_parser(FlexibleArgumentParser()).parse_args(server.command[3:])
    theirs = AsyncEngineArgs.from_cli_args(parsed)
    engine = llm_config(ours.model, ours.args).engine_kwargs
    for key in ("enforce_eager", "dtype", "max_num_seqs", "max_model_len"):
        assert getattr(theirs, key) == engine[key], key
    assert theirs.enforce_eager is True


def test_the_traffic_benchmark_runs_the_router_each_variant_is_named_for():
    """Whatever the stack's service sets: search-dev's chat is prefix-aware, and a "default" that
    kept the stack's router measured prefix-aware routing against itself."""
    from benchmarks.systems import service_run
    from benchmarks.traffic import VARIANTS

    for name, changes in VARIANTS.items():
        [model] = service_run("search-dev", "chat", None, **changes).args.models
        assert model.routing.router == name


def test_each_turn_of_a_conversation_waits_its_pause_then_resends_the_history(monkeypatch):
    """Without the pauses every answer of `max_tokens` ends at once, and the conversations on a
    replica send their next turns in lockstep: each turn's time to first token was the wait behind
    the others' prefill, whatever the routing. Every system gets the same pauses."""
    import asyncio

    from benchmarks import traffic

    events = []

    async def pause(seconds):
        events.append(("pause", seconds))

    async def completion(client, url, model, prompt, max_tokens):
        events.append(("send", prompt))
        return {"text": " answer", "ttft": 0.1}

    monkeypatch.setattr(traffic.asyncio, "sleep", pause)
    monkeypatch.setattr(traffic, "completion", completion)
    [conversation] = traffic.conversations(1, 2, system_words=3, context_words=3, user_words=2)
    [waits] = traffic.pauses(1, 2, mean_s=1.0)
    results = asyncio.run(traffic.chat(None, "url", "model", conversation, waits, 4))

    assert [kind for kind, _ in events] == ["pause", "send", "pause", "send"]
    assert [value for kind, value in events if kind == "pause"] == waits
    first, second = (value for kind, value in events if kind == "send")
    assert second.startswith(first + " answer\nUser: ")
    assert len(results) == 2
    assert traffic.pauses(12, 5, 1.0) == traffic.pauses(12, 5, 1.0)  # the same for every system
    assert 0.5 < statistics.mean(w for waits in traffic.pauses(12, 5, 1.0) for w in waits) < 1.5
