"""`make local` and `make local-job` end to end: the tool in its own process, as a person runs it."""

import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import psutil
import pytest
import requests

from components import slo
from tests.conftest import wait_for
from tools import local_metrics
from tools.local import LOCAL, laptop, local_application, port_free
from workloads.local import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_local_apps_are_the_stacks_serve_apps_with_local_swaps():
    [chat] = laptop("search-dev", "services", "chat")
    app = local_application(chat, Path("/tmp/payload.zip"))
    assert app.import_path == "workloads.serving.llm:build_app"  # the same builder as serveConfigV2
    assert app.args["profile"] == "cpu" and app.route_prefix == "/chat"
    [model] = app.args["models"]
    assert model["model_id"] == "qwen2.5-1.5b-instruct" and model["model_source"].endswith("build/models/tiny-llama")
    assert app.runtime_env == {"working_dir": "/tmp/payload.zip"}  # no pip: the venv has the packages


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# How the tool is stopped: Ctrl-C or SIGTERM to the tool alone; and a terminal's Ctrl-C, which
# reaches its whole process group, to a tool started as a non-interactive shell's `cmd &` starts it
# (SIGINT ignored).
STOPS = {
    "ctrl-c": (signal.SIGINT, False, None),
    "kill": (signal.SIGTERM, False, None),
    "ctrl-c-to-the-group": (signal.SIGINT, True, _ignore_sigint),
}


@pytest.mark.own_ray
@pytest.mark.parametrize("how", STOPS)
def test_make_local_serves_until_stopped_and_leaves_nothing_behind(tmp_path, how):
    stop, to_group, preexec = STOPS[how]
    port, log = free_port(), tmp_path / "local.log"
    with log.open("w") as out:
        tool = subprocess.Popen(
            [sys.executable, "-m", "tools.local", "serve", "search-dev", "--service", "embed", "--port", str(port)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preexec,
        )
    started: list[psutil.Process] = []
    url = f"http://127.0.0.1:{port}/embed/v1/embeddings"
    try:
        # The tool says when the services are healthy; until then it must not have exited.
        wait_for(lambda: tool.poll() is not None or "stops them." in log.read_text(), 300, "healthy services")
        assert tool.poll() is None, log.read_text()
        reply = requests.post(url, json={"input": ["hello", "world"]}, timeout=30)
        assert reply.status_code == 200
        vectors = [np.array(d["embedding"]) for d in reply.json()["data"]]
        assert [v.shape for v in vectors] == [(384,), (384,)]
        for _ in range(16):  # under load, as a person tries it
            assert requests.post(url, json={"input": ["some load"] * 8}, timeout=30).status_code == 200
        if how == "ctrl-c":
            _the_teams_rules_evaluate_on_this_traffic(log.read_text(), url)
        # Every process it started, in its group or not (Ray's workers and Serve's HAProxy have their own).
        started = psutil.Process(tool.pid).children(recursive=True)
        assert any(p.name() == "haproxy" for p in started)
        # Its replicas yield to nothing of the user's, the load sent here included (workloads/local ENV).
        pids = {p.pid for p in started}  # (read through process_iter: an idle Ray worker may exit meanwhile)
        replicas = {
            p.info["cmdline"][0]: p.info["nice"]
            for p in psutil.process_iter(["cmdline", "nice"])
            if p.pid in pids and (p.info["cmdline"] or [""])[0].startswith("ray::ServeReplica")
        }
        assert replicas and set(replicas.values()) == {0}, replicas
    finally:
        if to_group:
            os.killpg(tool.pid, stop)
        else:
            tool.send_signal(stop)
        tool.wait(timeout=120)
    output = log.read_text()
    assert tool.returncode == 0, output
    assert "healthy" in output and f"curl {url}" in output and "Ray dashboard: http://127.0.0.1:" in output
    assert "stopping" in output and "Traceback" not in output and "Nothing to shut down" not in output
    # Ray's and vLLM's own logs stay in Ray's log files (--verbose shows them).
    for noise in ('"asctime"', "Token authentication", "graceful_shutdown", "(raylet)", "INFO"):
        assert noise not in output, output
    wait_for(lambda: not any(_alive(p) for p in started), 60, "its processes (Ray's, HAProxy) to exit")
    wait_for(lambda: port_free(port), 30, f"port {port} to be free")


def _the_teams_rules_evaluate_on_this_traffic(output: str, url: str) -> None:
    """The search team's own rules, in the local Prometheus the tool started, record the embed
    service's p95 latency from the requests sent here, and its alerts are loaded and healthy."""
    found = re.findall(r"search's alert rules on this traffic: (http://127\.0\.0\.1:\d+)/alerts", output)
    assert found, f"no local Prometheus (.ci/prometheus-tools installs it):\n{output}"
    [prometheus] = found
    query = '{__name__=~"rayplane:serve_(latency_ms_p95|error_ratio):5m", application="embed"}'

    def recorded():
        requests.post(url, json={"input": ["hello"]}, timeout=30)
        found = requests.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=10).json()
        samples = {s["metric"]["__name__"]: float(s["value"][1]) for s in found["data"]["result"]}
        # NaN while the window holds no increase yet (Ray reports its metrics every few seconds)
        return samples if len(samples) == 2 and not any(map(math.isnan, samples.values())) else None

    samples = wait_for(recorded, 180, f"{query} in the local Prometheus", interval_s=2)
    assert 0 < samples["rayplane:serve_latency_ms_p95:5m"] < 30_000  # ms
    assert samples["rayplane:serve_error_ratio:5m"] == 0
    # the Serve series the rules read are the ones Ray 2.60 exports (a health check's failures
    # only once one fails; vLLM's and GPU series need a model or a GPU)
    names = set(requests.get(f"{prometheus}/api/v1/label/__name__/values", timeout=10).json()["data"])
    serve = {n for n in slo.METRICS if n.startswith("ray_serve_")} - {"ray_serve_health_check_failures_total"}
    assert serve <= names, serve - names

    def evaluated():
        # "unknown" until its group's first evaluation, which need not follow the recording rules'
        rules = requests.get(f"{prometheus}/api/v1/rules", params={"type": "alert"}, timeout=10).json()
        alerts = {r["name"]: r for g in rules["data"]["groups"] for r in g["rules"]}
        burn = alerts["RayServeErrorBudgetBurn"]
        return burn if burn["health"] != "unknown" else None

    burn = wait_for(evaluated, 120, "RayServeErrorBudgetBurn's first evaluation", interval_s=1)
    assert (burn["health"], burn["state"]) == ("ok", "inactive"), burn


def test_without_a_working_prometheus_the_services_run_and_the_tool_says_why(monkeypatch, tmp_path):
    monkeypatch.setattr(local_metrics.shutil, "which", lambda _: None)
    assert local_metrics.start("search", [], free_port(), tmp_path).startswith("no `prometheus` on PATH")
    monkeypatch.setattr(local_metrics.shutil, "which", lambda _: "/bin/false")  # exits at once
    assert local_metrics.start("search", [], free_port(), tmp_path).startswith("Prometheus did not start")
    assert list(tmp_path.iterdir()) == []  # its folder goes with it


@pytest.mark.own_ray
def test_make_local_job_runs_through_the_jobs_api():
    done = subprocess.run(
        [sys.executable, "-m", "tools.local", "job", "search-dev", "reindex"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "SUCCEEDED" in done.stdout and "rows read 200, written 197, quarantined 3" in done.stdout
    assert "Nothing to shut down" not in done.stdout + done.stderr
    summary = json.loads((LOCAL / "search-dev" / "reindex" / "_SUMMARY.json").read_text())
    assert summary["complete"] and summary["rows_quarantined"] == 3


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (["serve", "no-such-stack"], "stacks/Pulumi.no-such-stack.yaml: no such stack file"),
        (["serve", "search-dev", "--port", "{busy}"], "--port: 127.0.0.1:{busy} is in use; pick another port"),
        (["job", "search-dev", "reindex", "--input", "/no/such.jsonl"], "--input: /no/such.jsonl does not exist"),
    ],
)
def test_a_bad_command_is_one_error_line_and_exit_2(command, error):
    with socket.socket() as busy:  # a port something else holds
        busy.bind(("127.0.0.1", 0))
        port = str(busy.getsockname()[1])
        done = subprocess.run(
            [sys.executable, "-m", "tools.local", *(part.format(busy=port) for part in command)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 2, done.stderr
    assert error.format(busy=port) in done.stderr and "Traceback" not in done.stderr
    assert "Ray" not in done.stdout  # refused before anything started
