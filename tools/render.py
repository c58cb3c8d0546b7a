"""Offline render: run the Pulumi program for a stack under Pulumi's mock engine.

No Pulumi CLI, credentials or cloud: every resource the program registers is recorded with its
inputs; Kubernetes objects are also written as YAML manifests. Cloud-computed outputs (the
cluster's DNS endpoint, service account e-mails, the identity pool's name, GitHub ids) get stand-in
values, and a team stack's StackReference answers with its platform stack's rendered exports.

    python -m tools.render [STACK ...] [--out DIR]
"""

import argparse
import asyncio
import contextlib
import contextvars
import functools
import hashlib
import json
import logging
import runpy
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.settings import get_root_resource

from components.coldstart import ColdStart
from components.config import NAMESPACE, ConfigError
from components.config.loading import stack_file
from components.config.team import STACK_REFERENCE

ROOT = Path(__file__).resolve().parents[1]
STACKS = ROOT / "stacks"
PROGRAM = ROOT / "__main__.py"
SECRET = "[secret]"
# What a `secure:` config value reads offline: shaped like the URLs some secrets hold (alert
# receivers), so that the config's checks of their values pass where nothing can decrypt them.
STAND_IN = "https://stand-in.invalid/secret"
MANIFEST_ORDER = ("apiVersion", "kind", "metadata")
PROJECT_NUMBER = "123456789012"  # the bootstrap project's, in the Workload Identity pool's name
REPOSITORY_ID = 987654321  # the GitHub repository's numeric id


def dns_endpoint(location: str) -> str:
    """A stand-in for a cluster's control-plane DNS name (GKE: gke-<hash>.<region>.gke.goog)."""
    region = location if location.count("-") == 1 else location.rsplit("-", 1)[0]
    return f"gke-0123456789abcdef0123456789abcdef0123.{region}.gke.goog"


def stack_names() -> list[str]:
    return sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in STACKS.glob("Pulumi.*.yaml"))


def _unsecure(value):
    """Stand-ins for `secure:` values (offline there is no key to decrypt them); True if any."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        return STAND_IN, True
    if isinstance(value, dict):
        pairs = {k: _unsecure(v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(s for _, s in pairs.values())
    if isinstance(value, list):
        items = [_unsecure(v) for v in value]
        return [v for v, _ in items], any(s for _, s in items)
    return value, False


def pulumi_config(values: dict) -> tuple[dict[str, str], list[str]]:
    """Config as the Pulumi engine hands it to the program: full keys, structured values as JSON,
    and the keys that hold secrets."""
    config, secret_keys = {}, []
    for key, value in values.items():
        key = key if ":" in key else f"{NAMESPACE}:{key}"
        value, secret = _unsecure(value)
        config[key] = value if isinstance(value, str) else json.dumps(value)
        if secret:
            secret_keys.append(key)
    return config, secret_keys


def stack_config(stack: str) -> tuple[dict[str, str], list[str]]:
    return pulumi_config(stack_file(stack, STACKS))


def _mask(value):
    """A secret's shape with every value hidden (a Secret's stringData keeps its keys)."""
    if isinstance(value, dict):
        return {k: _mask(value[k]) for k in sorted(value) if k != rpc._special_sig_key}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return SECRET


def _plain(value):
    """Readable values: secrets masked, and ints (which mocks hand back as floats) as ints."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        return _mask(value["value"])
    if isinstance(value, pulumi.FileAsset):
        return {"fileAsset": value.path}
    if isinstance(value, dict):  # sorted: the engine's protobuf maps have no stable order
        return {k: _plain(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass
class Render:
    stack: str
    resources: list[dict] = field(default_factory=list)  # {type, name, parent, inputs}
    outputs: dict = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)  # what `pulumi up` would show as warnings

    def manifests(self) -> list[dict]:
        """Every Kubernetes object, as it would be applied."""
        return [r["inputs"] for r in self.resources if r["type"].startswith("kubernetes:") and "kind" in r["inputs"]]


class _Diagnostics(logging.Handler):
    """The engine's log (pulumi.log.warn and the like) of one render, kept instead of printed."""

    def __init__(self, render: Render):
        super().__init__(logging.WARNING)
        self.render = render

    def emit(self, record: logging.LogRecord) -> None:
        self.render.warnings.append(record.getMessage())


def _engine_log(render: Render) -> logging.Logger:
    logger = logging.getLogger(f"{__name__}.{id(render)}")
    logger.propagate, logger.handlers = False, [_Diagnostics(render)]
    return logger


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self, render: Render, project: str | None, references: dict[str, "Render"]):
        self.render, self.project, self.references = render, project, references

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = dict(args.inputs)
        if args.typ == "pulumi:pulumi:StackReference":
            platform = self.references[args.inputs["name"]]
            state["outputs"] = platform.outputs
            state["secretOutputNames"] = sorted(platform.secret_outputs)
        elif args.typ == "gcp:container/cluster:Cluster":
            state["controlPlaneEndpointsConfig"] = {"dnsEndpointConfig": {"endpoint": dns_endpoint(state["location"])}}
        elif args.typ == "gcp:iam/workloadIdentityPool:WorkloadIdentityPool":
            pool = state["workloadIdentityPoolId"]
            state["name"] = f"projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/{pool}"
        elif args.typ == "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider":
            pool, provider = state["workloadIdentityPoolId"], state["workloadIdentityPoolProviderId"]
            state["name"] = f"projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/{pool}"
            state["name"] += f"/providers/{provider}"
        elif args.typ == "gcp:projects/iAMCustomRole:IAMCustomRole":
            state["name"] = f"projects/{state['project']}/roles/{state['roleId']}"
        elif args.typ == "gcp:serviceaccount/account:Account":
            project = state.get("project", self.project)
            state["email"] = f"{args.inputs['accountId']}@{project}.iam.gserviceaccount.com"
            state["name"] = f"projects/{project}/serviceAccounts/{state['email']}"
        elif args.custom and "name" not in state and not args.typ.startswith(("kubernetes:", "pulumi:")):
            state["name"] = args.name  # deterministic stand-in for Pulumi's auto-name suffix
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        # GitHub lookups: the repository's numeric id, reviewers' numeric ids.
        if args.token == "github:index/getRepository:getRepository":
            return {"repoId": REPOSITORY_ID, "fullName": args.args["fullName"]}
        if args.token in ("github:index/getUser:getUser", "github:index/getTeam:getTeam"):
            return {"id": str(sum(map(ord, args.args.get("username") or args.args.get("slug"))))}
        if args.token == "gcp:artifactregistry/getDockerImage:getDockerImage":  # built: by a digest of its name
            a = args.args
            path = f"{a['location']}-docker.pkg.dev/{a['project']}/{a['repositoryId']}/{a['imageName'].split(':')[0]}"
            return {"selfLink": f"{path}@sha256:{hashlib.sha256(a['imageName'].encode()).hexdigest()}"}
        return {}


class _Monitor(pulumi_mocks.MockMonitor):
    """Records each registration with its parent, which Mocks.new_resource does not see."""

    def __init__(self, mocks: _Mocks):
        super().__init__(mocks)
        self.render = mocks.render

    def _record(self, request, properties) -> None:
        self.render.resources.append(
            {
                "type": request.type,
                "name": request.name,
                "parent": request.parent.rsplit("::", 1)[-1] if request.parent else None,
                # "urn::id" of an explicit provider; empty means the ambient default provider
                "provider": request.provider.split("::")[-2] if request.provider else None,
                # explicit depends_on plus resources whose outputs feed the inputs
                "dependsOn": sorted({urn.rsplit("::", 1)[-1] for urn in getattr(request, "dependencies", [])}),
                "protect": getattr(request, "protect", False),
                "inputs": _plain(rpc.deserialize_properties(properties)),
            }
            # an existing cloud resource the stack adopts (the `import` option)
            | ({"importId": request.importId} if getattr(request, "importId", "") else {})
        )

    def RegisterResource(self, request):
        if request.type != "pulumi:pulumi:Stack":
            self._record(request, request.object)
        return super().RegisterResource(request)

    def ReadResource(self, request):  # StackReference and other `get`s
        self._record(request, request.properties)
        return super().ReadResource(request)


def _platform_references(stack: str, config: dict[str, str]) -> dict[str, Render]:
    """A team stack's platform stack, rendered from its stack file (a StackReference reads it)."""
    ref = config.get(f"{NAMESPACE}:platformStack")
    if not isinstance(ref, str) or not STACK_REFERENCE.fullmatch(ref) or ref.endswith(f"/{NAMESPACE}/{stack}"):
        return {}  # the program reports it
    stack = ref.rsplit("/", 1)[-1]
    path = STACKS / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise ConfigError([f"platformStack: no stack file stacks/Pulumi.{stack}.yaml to render {ref} from"])
    return {ref: _platform_render(stack, path.read_text())}


@contextlib.contextmanager
def stacks_with(changes: dict[str, dict]) -> Iterator[Path]:
    """Renders in this block read a copy of stacks/ in which each stack named in `changes` has that
    config (e.g. a platform with one more tenant, for a generated team): tests and benchmarks."""
    global STACKS
    original = STACKS
    with tempfile.TemporaryDirectory() as folder:
        STACKS = Path(folder)
        shutil.copytree(original, STACKS, dirs_exist_ok=True)
        for stack, config in changes.items():
            (STACKS / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))
        try:
            yield STACKS
        finally:
            STACKS = original


@functools.cache
def _platform_render(stack: str, content: str) -> Render:
    """A platform stack's render, once per content of its stack file: every render of its teams
    reads the same exports (a process renders many teams: the tests, the benchmarks)."""
    return render(stack)


def _run(stack: str, config: dict[str, str], secret_keys: list[str]) -> tuple[Render, ConfigError | None]:
    result = Render(stack)
    try:
        references = _platform_references(stack, config)
    except ConfigError as exc:
        return result, exc
    mocks = _Mocks(result, config.get("gcp:project"), references)
    pulumi.runtime.set_mocks(
        mocks, project=NAMESPACE, stack=stack, preview=False, logger=_engine_log(result), monitor=_Monitor(mocks)
    )
    pulumi.runtime.set_all_config(config, secret_keys)

    @pulumi.runtime.test
    def program():
        runpy.run_path(str(PROGRAM), run_name="__main__")

        async def exports():
            for name, value in get_root_resource().outputs.items():
                output = pulumi.Output.from_input(value)
                result.outputs[name] = _plain(await output.future())
                if await output.is_secret():
                    result.secret_outputs.add(name)

        return pulumi.Output.from_input(exports())

    error = None
    try:
        program()
    except ConfigError as exc:
        # Outputs that failed on the same error are collected later; it was reported once already.
        asyncio.get_event_loop().set_exception_handler(_ignore_config_errors)
        error = exc
    result.resources.sort(key=lambda r: (r["type"], r["name"]))
    return result, error


def _ignore_config_errors(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    if not isinstance(context.get("exception"), ConfigError):
        loop.default_exception_handler(context)


def attempt(stack: str, config: tuple[dict[str, str], list[str]] | None = None) -> tuple[Render, ConfigError | None]:
    """Run the program for `stack` (with its stack file's config unless `config` is given) in a
    fresh context (Pulumi's runtime state lives in contextvars, so renders never leak into each
    other): what it registered, and the config error it stopped on, if any."""
    try:
        config = stack_config(stack) if config is None else config
    except ConfigError as exc:
        return Render(stack), exc
    return contextvars.Context().run(_run, stack, *config)


def render(stack: str, config: tuple[dict[str, str], list[str]] | None = None) -> Render:
    """The render of a valid stack; a ConfigError for an invalid one."""
    result, error = attempt(stack, config)
    if error is not None:
        raise error
    return result


class _ManifestDumper(yaml.SafeDumper):
    """Multi-line strings (serveConfigV2, runtimeEnvYAML) as YAML blocks, as a person writes them."""


_ManifestDumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None),
)


def _manifest_file(obj: dict) -> str:
    meta = obj["metadata"]
    return "-".join(filter(None, [obj["kind"].lower(), meta.get("namespace"), meta["name"]])) + ".yaml"


def write(result: Render, out: Path) -> None:
    """build/render/<stack>/: resources.json (the capacity report and every resource), outputs.json
    (secrets masked), manifests/*.yaml."""
    shutil.rmtree(out, ignore_errors=True)
    (out / "manifests").mkdir(parents=True)
    resources = {"capacity": result.outputs.get("capacity"), "resources": result.resources}
    (out / "resources.json").write_text(json.dumps(resources, indent=2, sort_keys=True) + "\n")
    outputs = {k: SECRET if k in result.secret_outputs else v for k, v in result.outputs.items()}
    (out / "outputs.json").write_text(json.dumps(outputs, indent=2, sort_keys=True) + "\n")
    for obj in result.manifests():
        ordered = {key: obj[key] for key in MANIFEST_ORDER if key in obj} | obj  # kubectl's order first
        text = yaml.dump(ordered, Dumper=_ManifestDumper, sort_keys=False)
        (out / "manifests" / _manifest_file(obj)).write_text(text)


def _usd(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.2f}"


def _capacity_lines(report: dict) -> list[str]:
    """The capacity report in a few lines: costs per pool or workload, fits, decode floors."""
    lines = []
    if "pools" in report:
        total = report["gpuCostPerHour"] or {"min": None, "max": None}
        lines.append(
            f"  GPU cost per hour: {_usd(total['min'])} idle (minNodes, spare nodes), {_usd(total['max'])} at maxNodes"
        )
        for pool in report["pools"]:
            cost = pool["costPerHour"] or {"min": None, "max": None}
            nodes = f"{pool['nodes']['min']}-{pool['nodes']['max']} nodes x {_usd(pool['nodePrice'])}"
            spare = f" ({pool['spareNodes']} spare)" if pool["spareNodes"] else ""
            lines.append(f"    {pool['name']}: {nodes} = {_usd(cost['min'])}-{_usd(cost['max'])}{spare}")
    for w in report.get("workloads", []):
        cost = w["gpuCostPerHour"] or {"min": None, "max": None}
        needed = w["workersNeeded"]
        lines.append(
            f"  {w['name']} ({w['path']}): replicas of {w['replicas']['min']} to {w['replicas']['max']} need"
            f" {needed['min']}-{needed['max']} workers of {w['gpusPerWorker']} GPU(s) from {w['gpuSource']}"
            f" ({w['workersPossible']} can run); GPUs {_usd(cost['min'])}-{_usd(cost['max'])}/h"
        )
        if len(w.get("tiers", [])) > 1:
            tiers = [
                f"{t['pool']} {t['provisioning']} {_usd((t['gpuCostPerHour'] or {}).get('min'))}-"
                f"{_usd((t['gpuCostPerHour'] or {}).get('max'))}"
                for t in w["tiers"]
            ]
            lines.append(f"    by tier: {', '.join(tiers)} /h")
        if (r := w.get("rollout")) and r["surgeWorkers"]:
            lines.append(
                f"    rollout ({r['strategy']}): +{r['surgeWorkers']} worker(s), {r['surgeGpus']} GPU(s),"
                f" +{_usd(r['surgeCostPerHour'])}/h beside the serving cluster:"
                f" {r['workersDuring']} of {r['workersPossible']} workers possible"
            )
        if w.get("coldStart"):
            cold = ColdStart.model_validate(w["coldStart"])
            lines.append(f"    cold start on a new node: {cold.seconds}s ({cold.brief})")
            if cold.spare:
                lines.append(f"    cold start on a spare node: {cold.spare.seconds}s ({cold.spare.brief})")
        for fit in w["models"]:
            offload = f" + {fit['offloadKvTokens']:,} offloaded to host memory" if fit.get("offloadKvTokens") else ""
            lines.append(
                f"    {fit['model']} on {fit['accelerator']} at {fit['placement']}: {fit['weightsGibPerGpu']:g} GiB"
                f" weights, KV {fit['kvGibNeeded']:g} of {fit['kvGibFree']:g} GiB free per GPU"
                f" ({fit['kvTokens']:,} tokens a replica{offload}); decode >= {fit['msPerTokenFloor']:g} ms/token"
            )
    if "quotaGpus" in report:
        share = ""
        if report["quotaCostPerHour"] is not None and report["platformCostPerHourMax"]:
            share = f", {report['quotaCostPerHour'] / report['platformCostPerHourMax']:.0%} of the platform's maximum"
        lines.append(f"  quota: {report['quotaGpus']} GPUs, up to {_usd(report['quotaCostPerHour'])}/h{share}")
    lines.append(f"  (costs: {report['estimate']})")
    return lines


def summary(result: Render) -> str:
    counts = Counter(r["type"] for r in result.resources)
    lines = [f"{result.stack}: {len(result.resources)} resources"]
    lines += [f"  {n:3d} {t}" for t, n in sorted(counts.items())]
    for pool in result.outputs.get("gpuNodePools", []):
        size = f"{pool['gpusPerNode']}x {pool['accelerator']} on {pool['machineType']}"
        ladder = f", ladder {pool['computeClass']}" if pool.get("computeClass") else ""
        queued = " (queued, for Kueue's jobs)" if pool.get("queued") else ""
        lines.append(f"  GPU pool {pool['name']}: {size}, {pool['gpuMode']}, {pool['provisioning']}{queued}{ladder}")
    if "namespace" in result.outputs:
        lines.append(f"  team namespace: {result.outputs['namespace']}")
        for kind in ("RayService", "RayJob"):
            names = [m["metadata"]["name"] for m in result.manifests() if m["kind"] == kind]
            lines.append(f"  {kind}s: {', '.join(names) or 'none'}")
    if "capacity" in result.outputs:
        lines += _capacity_lines(result.outputs["capacity"])
    lines += [f"  warning: {warning}" for warning in result.warnings]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stacks", nargs="*", help="stack names (default: every stacks/Pulumi.<stack>.yaml)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "render", help="output folder")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.stacks) - set(stack_names()))
    if unknown:
        parser.error(f"no stack file for {', '.join(unknown)} (have: {', '.join(stack_names())})")
    for stack in args.stacks or stack_names():
        shutil.rmtree(args.out / stack, ignore_errors=True)  # a failed render leaves nothing behind
        try:
            result = render(stack)
        except ConfigError as exc:
            print(f"{stack}: {exc}", file=sys.stderr)
            return 2
        write(result, args.out / stack)
        print(summary(result))
        print(f"  -> {(args.out / stack).relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out / stack}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
