"""`make local`'s Prometheus: the team's own recording and alerting rules (components/slo.py, the
groups its GMP `Rules` object holds) evaluated on the local Ray's metrics, so a person sees an SLI
recorded and an alert's state from the traffic they send. The cluster's collectors scrape the same
exporter (the Ray metrics port of every pod), under the same job name for heads.

Prometheus is Debian's `prometheus` package (.ci/prometheus-tools); without it the services run as
before and the tool says what is missing.
"""

import ctypes
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from components import slo
from components.config import Service
from components.conventions import RAY_HEADS_MONITOR
from workloads.local import free_port

SCRAPE_INTERVAL = "5s"  # the cluster scrapes every 30s; a person trying it out should not wait for it
READY_WITHIN_S = 30
PR_SET_PDEATHSIG = 1  # linux/prctl.h
# Looked up before any fork: the child only calls it (a lookup there could wait on a lock that one
# of Ray's threads held when the process forked).
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent() -> None:
    """Prometheus goes when the tool goes, even if the tool is killed with SIGKILL."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class LocalPrometheus:
    url: str
    process: subprocess.Popen
    folder: Path  # its config, data and log

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


def config(metrics_port: int, rules: Path) -> dict:
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {"job_name": RAY_HEADS_MONITOR, "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}
        ],
    }


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


def start(team: str, services: list[Service], metrics_port: int, under: Path) -> LocalPrometheus | str:
    """A ready Prometheus on a free local port with the team's rules for `services`, in a folder of
    its own under `under`; or why there is none."""
    binary = shutil.which("prometheus")
    if binary is None:
        return "no `prometheus` on PATH (Debian's package; .ci/prometheus-tools installs it)"
    under.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="prometheus-", dir=under))
    rules = folder / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": slo.rule_groups(team, services)}, sort_keys=False))
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config(metrics_port, rules), sort_keys=False))
    address = f"127.0.0.1:{free_port()}"
    with (folder / "prometheus.log").open("w") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address={address}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
            preexec_fn=_die_with_parent,
        )
    prometheus = LocalPrometheus(f"http://{address}", process, folder)
    deadline = time.monotonic() + READY_WITHIN_S
    while process.poll() is None and time.monotonic() < deadline:
        if _ready(prometheus.url):
            return prometheus
        time.sleep(0.2)
    tail = (folder / "prometheus.log").read_text()[-1500:]
    prometheus.stop()
    return f"Prometheus did not start within {READY_WITHIN_S}s:\n{tail}"
