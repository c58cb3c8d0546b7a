"""`make local`'s Prometheus: the team's own recording and alerting rules (components/slo.py, the
groups its GMP `Rules` object holds) evaluated on the local Ray's metrics, so a person sees an SLI
recorded and an alert's state from the traffic they send. The cluster's collectors scrape the same
exporter (the Ray metrics port of every pod), under the same job name for heads.

Prometheus is Debian's `prometheus` package (the one CI installs for promtool); without it the
services run as before and the tool says what is missing.
"""

import ctypes
import shutil
import signal
import subprocess
from pathlib import Path

import yaml

from components import slo
from components.config import Service
from components.conventions import RAY_HEADS_MONITOR
from workloads.local import free_port

SCRAPE_INTERVAL = "5s"  # the cluster scrapes every 30s; a person trying it out should not wait for it
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent() -> None:
    """Prometheus goes when the tool goes, even if the tool is killed with SIGKILL."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def config(metrics_port: int, rules: Path) -> dict:
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {"job_name": RAY_HEADS_MONITOR, "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}
        ],
    }


def start(team: str, services: list[Service], metrics_port: int, folder: Path) -> tuple[str, subprocess.Popen] | None:
    """A Prometheus on a free local port with the team's rules for `services`, its config, data and
    log in `folder` (emptied first): (its URL, its process), or None where none is installed."""
    binary = shutil.which("prometheus")
    if binary is None:
        return None
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rules = folder / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": slo.rule_groups(team, services)}, sort_keys=False))
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config(metrics_port, rules), sort_keys=False))
    address = f"127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address={address}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(folder / "prometheus.log").open("w"),
        preexec_fn=_die_with_parent,
    )
    return f"http://{address}", process


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
