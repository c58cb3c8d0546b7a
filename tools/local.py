"""Run a team stack's services and jobs on a laptop Ray, from the laptop form of the team's plan
(components/plan.py) and the same payload archive that the cluster gets. Only the laptop swaps
differ: args.profile "cpu" (CPU fractions instead of GPUs), the locally made tiny LLM instead of
the stack's weights, local input/output paths, and the archive as a local zip, not its gs:// copy.

    python -m tools.local serve STACK [--service NAME] [--port 8000] [--verbose]   # Ctrl-C or SIGTERM stops it
    python -m tools.local job STACK JOB [--input PATH] [--verbose]
"""

import argparse
import asyncio
import importlib
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Literal

from components import plan
from components.config import ConfigError, TeamStack, from_pulumi_config
from components.conventions import SERVE_PORT
from components.payload import write_archive
from components.plan import PayloadRun
from components.ray_workloads import job_entrypoint, serve_application
from components.rayspec import ServeApplication
from tools import local_metrics
from tools.render import ROOT, stack_config
from workloads.config import Args
from workloads.local import ENV, SAMPLE, free_port

LOCAL = ROOT / "build" / "local"
HEALTHY_WITHIN_S = 300


def team_config(stack: str) -> TeamStack:
    config, secret_keys = stack_config(stack)
    cfg = from_pulumi_config(config, set(secret_keys))
    if not isinstance(cfg, TeamStack):
        raise ConfigError([f"kind: {stack} is a {cfg.kind} stack; run a team stack locally"])
    return cfg


def laptop(stack: str, kind: Literal["services", "jobs"], name: str | None = None) -> list[PayloadRun]:
    """The stack's services or jobs (the one named `name`, or all) in the laptop form of its plan."""
    config = team_config(stack)
    runs = list(getattr(plan.laptop(config, None if name is None else [name]), kind))
    if not runs:
        known = ", ".join(w.name for w in getattr(config, kind))
        raise ConfigError([f"{kind}: {stack} has no {kind.removesuffix('s')} {name!r} ({known})"])
    return runs


def local_application(service: PayloadRun, working_dir: Path) -> ServeApplication:
    """The service's Serve app, as the cluster's serveConfigV2 has it, under a route of its own:
    one local Serve hosts every service of the team."""
    application = serve_application(service, str(working_dir))
    return application.model_copy(update={"route_prefix": f"/{service.name}"})


def local_entrypoint(job: PayloadRun, input_path: str | None, output: Path) -> str:
    """The job's entrypoint with local input and output, run by this interpreter: the one whose
    virtualenv has the payloads' packages, as the image's does."""
    args = job.args.updated(input=input_path or str(SAMPLE), output=str(output))
    return job_entrypoint(replace(job, args=args), python=sys.executable)


def serve_env(args: list[Args]) -> dict[str, str]:
    """The Ray environment of payloads that share one local Ray: what each needs, less the settings
    they disagree on (each cluster gets its own in the cloud; unset is Ray's default)."""
    merged: dict[str, str] = {}
    disputed = set()
    for payload in args:
        for key, value in payload.serve_env().items():
            if merged.setdefault(key, value) != value:
                disputed.add(key)
    return {key: value for key, value in merged.items() if key not in disputed}


def start_ray(
    working_dir: Path,
    env: dict[str, str] | None = None,
    verbose: bool = False,
    metrics_port: int | None = None,
    dashboard: bool = True,
) -> str | None:
    """A local Ray whose jobs and Serve apps run from the payload archive, its processes started
    with `env` as a cluster's pods are (set before Ray is imported: Serve reads it at import);
    the dashboard URL. Unless `verbose`, Ray's and vLLM's own logs stay in Ray's log files. Its
    Prometheus metrics are served on `metrics_port` (default: one Ray picks). Without `dashboard`
    (and its Jobs API), Ray starts none of the dashboard's nine module processes: in the cluster
    they run on the head pod, which runs no replica (num-cpus 0), not beside the engines."""
    os.environ.update(env or {})
    import ray

    if not verbose:
        import ray.serve  # Serve sets its logger's level when imported: ours comes after

        # (vLLM logs through the root logger when a builder imports it.)
        for name, level in (("ray", logging.ERROR), ("ray.serve", logging.WARNING), ("vllm", logging.WARNING)):
            logging.getLogger(name).setLevel(level)
    context = ray.init(
        runtime_env={"working_dir": str(working_dir), "env_vars": {**ENV, **(env or {})}},
        include_dashboard=dashboard,  # the Jobs API, as KubeRay uses it
        dashboard_port=free_port() if dashboard else None,
        log_to_driver=verbose,
        configure_logging=False,
        _metrics_export_port=metrics_port,
    )
    stop_on_signals()  # again: ray.init installs its own handler, which aborts the driver
    return f"http://{context.dashboard_url}" if dashboard else None


def stop_on_signals() -> None:
    """SIGTERM (kill, timeout, a CI runner) stops everything as Ctrl-C does: Ray's processes and ports
    too. And SIGINT does, however the tool was started: a non-interactive shell starts a command
    with `&` with SIGINT ignored, and Python then installs no handler for it. (Ray starts its own
    processes with SIGINT blocked: a terminal's Ctrl-C, which reaches the whole process group, stops
    them only through the tool, in order.)"""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def deploy(applications: list[ServeApplication], port: int) -> None:
    """Deploy like Serve deploys a config file (import path + args), then wait for RUNNING."""
    from ray import serve
    from ray.serve import RunTarget

    serve.start(http_options={"host": "127.0.0.1", "port": port})
    targets = []
    for app in applications:
        module, builder = app.import_path.split(":")
        target = getattr(importlib.import_module(module), builder)(app.args)
        targets.append(RunTarget(target=target, name=app.name, route_prefix=app.route_prefix))
    serve.run_many(targets, wait_for_applications_running=False)
    started = time.monotonic()
    said = started
    while True:
        statuses = {name: s.status.value for name, s in serve.status().applications.items()}
        failed = {n: s for n, s in serve.status().applications.items() if s.status == "DEPLOY_FAILED"}
        if failed:
            raise RuntimeError("; ".join(f"{n}: {s.message}" for n, s in failed.items()))
        if all(statuses.get(app.name) == "RUNNING" for app in applications):
            return
        waited = time.monotonic() - started
        if waited > HEALTHY_WITHIN_S:
            raise TimeoutError(f"not healthy within {HEALTHY_WITHIN_S}s: {statuses}")
        if time.monotonic() - said >= 10:  # a model's first start takes a minute on a laptop
            pending = ", ".join(f"{app.name} {statuses.get(app.name, 'NOT_STARTED')}" for app in applications)
            print(f"  waiting for {pending} ({waited:.0f}s)", flush=True)
            said = time.monotonic()
        time.sleep(0.5)


def serve_stack(
    stack: str, service_name: str | None, port: int, hold: bool = True, verbose: bool = False
) -> tuple[str, list[PayloadRun], str]:
    """Start a local Ray, deploy the stack's services; (base URL, services, dashboard URL)."""
    services = laptop(stack, "services", service_name)
    if not port_free(port):
        raise ConfigError([f"--port: 127.0.0.1:{port} is in use; pick another port"])
    working_dir = write_archive()
    print(f"starting a local Ray and {', '.join(s.name for s in services)}", flush=True)
    metrics_port = free_port()
    # Serve's HAProxy binds fixed stats and metrics ports (8404, 9101: ray/serve/_private/constants.py)
    # on all interfaces; free ones here, so that another server or `make local` never collides with it.
    haproxy = {"RAY_SERVE_HAPROXY_STATS_PORT": str(free_port()), "RAY_SERVE_HAPROXY_METRICS_PORT": str(free_port())}
    dashboard = start_ray(working_dir, {**serve_env([s.args for s in services]), **haproxy}, verbose, metrics_port)
    base, prometheus = f"http://127.0.0.1:{port}", None
    try:
        started = time.monotonic()
        deploy([local_application(s, working_dir) for s in services], port)
        print(f"{stack}: {len(services)} service(s) healthy in {time.monotonic() - started:.1f}s")
        for service in services:
            url = f"{base}/{service.name}"
            print(f"{service.name} ({service.spec.payload}): {url}\n  {service.args.example_request(url)}")
        if hold:
            team = team_config(stack).team.name
            prometheus = local_metrics.start(team, [s.spec for s in services], metrics_port, LOCAL / stack)
            if isinstance(prometheus, str):
                print(f"(no local Prometheus for {team}'s alert rules: {prometheus})")
                prometheus = None
            else:
                print(f"{team}'s alert rules on this traffic: {prometheus.url}/alerts (recorded SLIs: rayplane:*)")
            print(f"Ray dashboard: {dashboard} (its token: `ray get-auth-token`)", flush=True)
            print("Ctrl-C (or SIGTERM) stops them.", flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        print("stopping", flush=True)
    finally:
        if prometheus:
            prometheus.stop()
        if hold:
            stop()
    return base, services, dashboard


def stop() -> None:
    """Stop the local Ray: every process it started goes with it (Serve's replicas, HAProxy, vLLM's
    engines), and its ports. Not serve.shutdown() first: on a laptop there is nothing to drain,
    and its controller's self-kill prints a warning that reads like an error."""
    import ray

    if ray.is_initialized():
        node = ray.get_runtime_context().get_node_id()
        ray.shutdown()
        _stop_haproxy(node)


def _stop_haproxy(node: str) -> None:
    """Serve's HAProxy (a child of Serve's HAProxy manager, restarted on every reload) can outlive
    Ray's shutdown, orphaned and holding the serve port: seen after a SIGTERM stop. Its config
    lives under a folder named for the node (serve/_private/haproxy.py), which finds it."""
    import psutil

    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "haproxy" and any(node in part for part in process.info["cmdline"] or []):
            process.kill()


def port_free(port: int) -> bool:
    """No process holds the port. Connections of a server that has stopped may linger in TIME_WAIT
    for a minute: they stop no new server (HAProxy, like any, binds with SO_REUSEADDR), nor this check."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def run_job(
    stack: str,
    job_name: str,
    input_path: str | None,
    dashboard: str | None = None,
    timeout_s: float | None = None,
    verbose: bool = False,
) -> int:
    """Submit the job's entrypoint through the Ray Jobs API (as KubeRay does), stream its logs,
    return 0 if it succeeded. Starts (and stops) a local Ray unless given one's dashboard URL."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    [job] = laptop(stack, "jobs", job_name)
    if input_path is not None and not Path(input_path).exists() and "://" not in input_path:
        raise ConfigError([f"--input: {input_path} does not exist"])
    working_dir = write_archive()
    own_ray = dashboard is None
    dashboard = dashboard or start_ray(working_dir, verbose=verbose)
    client = JobSubmissionClient(dashboard)
    submission = {
        "entrypoint": local_entrypoint(job, input_path, LOCAL / stack / job_name),
        "runtime_env": {"working_dir": str(working_dir), "env_vars": ENV},
    }
    deadline = time.monotonic() + 60
    while True:  # a fresh Ray's dashboard agent takes a moment before it takes jobs
        try:
            job_id = client.submit_job(**submission)
            break
        except RuntimeError as exc:
            if "No available agent" not in str(exc):
                raise
            if time.monotonic() > deadline:  # e.g. another local Ray holds the agent's port 52365
                raise RuntimeError(f"the local Ray's Jobs API took no job within 60s: {exc}") from exc
            time.sleep(0.5)

    async def tail():
        async for lines in client.tail_job_logs(job_id):
            print(lines, end="")

    try:
        try:
            asyncio.run(asyncio.wait_for(tail(), timeout_s))
        except TimeoutError:
            client.stop_job(job_id)
            print(f"job {job_name} ({job_id}) did not finish within {timeout_s:.0f}s; stopped it", file=sys.stderr)
            return 1
        status = client.get_job_status(job_id)
        print(f"job {job_name} ({job_id}): {status}")
        return 0 if status == JobStatus.SUCCEEDED else 1
    finally:
        if own_ray:
            stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="run a team stack's services until Ctrl-C")
    serve_cmd.add_argument("stack")
    serve_cmd.add_argument("--service")
    serve_cmd.add_argument("--port", type=int, default=SERVE_PORT)
    job_cmd = commands.add_parser("job", help="run one of a team stack's jobs")
    job_cmd.add_argument("stack")
    job_cmd.add_argument("job")
    job_cmd.add_argument("--input", help=f"JSON Lines or Parquet (default: {SAMPLE.relative_to(ROOT)})")
    for command in (serve_cmd, job_cmd):
        command.add_argument("--verbose", action="store_true", help="Ray's and vLLM's own logs too")
    args = parser.parse_args(argv)
    os.environ.update(ENV)
    stop_on_signals()
    try:
        if args.command == "serve":
            serve_stack(args.stack, args.service, args.port, verbose=args.verbose)
            return 0
        return run_job(args.stack, args.job, args.input, verbose=args.verbose)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before the services were up, or during a job
        stop()
        print("stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
