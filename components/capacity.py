"""Plan-time capacity: whether each model fits its GPUs, how fast it can decode at best, whether
each workload's replicas can be placed, and what the GPUs cost — before any GPU is provisioned.

Fit, per GPU of an LLM engine (vLLM):
    weights / (TP x PP) + KV cache + RUNTIME_GIB  <=  GPU memory x gpu_memory_utilization
where the KV cache holds max_model_len tokens for each sequence the engine runs at once, and a token
costs 2 (K and V) x its GPU's layers (layers / PP) x its GPU's KV heads (kv_heads / TP, at least one:
vLLM replicates heads over a larger TP) x head_dim x 2 bytes (vLLM's KV cache keeps the 16-bit type
of the activations unless told otherwise, whatever the weights' dtype). Replicas with a share of a
GPU each take their share of its memory (gpu_memory_utilization defaults to 0.9 of the share, and
more is refused in workloads/config.py), so the replicas packed on one GPU fit together when each
fits its share.

Decode floor: each output token reads every weight once; the TP ranks read their shards at the same
time and the PP stages one after the other, so one sequence's token takes at least
weights / TP / memory bandwidth.

Scale-out: the workers a workload's replicas need (fractional replicas pack into a worker's GPUs,
never across workers) against what can run: workers.replicas.max, the pools' maxNodes, and the
team's GPU quota beside its other workloads' minimum. Even the minimum not fitting is an error; a
maximum autoscaling can never reach is a warning.
"""

import math
from collections import Counter

from pydantic import Field

from components.coldstart import ColdStart
from components.config import GpuNodePool, PlatformStack
from components.config.base import Model
from components.config.team import Replicas
from components.contract import GpuPoolExport
from components.gpu import ACCELERATORS
from components.placement import Placement
from components.pricing import ESTIMATE, missing
from workloads.config import Args, LLMModel, Scale
from workloads.facts import GIB

RUNTIME_GIB = 1.0  # per GPU: activations of vLLM's profiling pass, CUDA graphs, the CUDA context (an estimate)
KV_BYTES = 2
# Ray's object store takes this share of a worker pod's memory unless told otherwise
# (ray/_private/ray_constants.py@2.60.0:110, DEFAULT_OBJECT_STORE_MEMORY_PROPORTION).
OBJECT_STORE_SHARE = 0.3


class Range(Model):
    min: float
    max: float


class ModelFit(Model):
    """One LLM engine on one accelerator: its memory per GPU and its decode floor."""

    model: str = Field(description="preset or model id, and weight dtype")
    accelerator: str
    placement: str = Field(description="TP and PP sizes, or its share of a GPU")
    weights_gib_per_gpu: float
    usable_gib_per_gpu: float = Field(description="GPU memory x gpu_memory_utilization")
    utilization: float
    max_model_len: int
    sequences: int
    kv_gib_free: float = Field(description="per GPU, after the weights and RUNTIME_GIB")
    kv_gib_needed: float = Field(description="per GPU, for max_model_len x sequences")
    kv_tokens: int = Field(description="tokens of KV cache a replica's GPUs hold beside the weights")
    offload_kv_tokens: int = Field(0, description="tokens more its KV offload (host memory) holds")
    ms_per_token_floor: float = Field(description="weights / TP / memory bandwidth")

    @property
    def fits(self) -> bool:
        return self.kv_gib_needed <= self.kv_gib_free

    def problem(self) -> str:
        return (
            f"{self.model} needs {self.weights_gib_per_gpu:.1f} GiB weights per GPU at {self.placement} on"
            f" {self.accelerator}; with gpu_memory_utilization {self.utilization:g} and {RUNTIME_GIB:g} GiB for"
            f" activations that leaves {self.kv_gib_free:.1f} GiB for KV, but max_model_len {self.max_model_len}"
            f" x {self.sequences} sequences needs {self.kv_gib_needed:.1f} GiB"
        )


class RolloutCapacity(Model):
    """A service's rollout: what a change that starts a new RayCluster (components/rollout.py) needs
    while the old one still serves."""

    strategy: str = Field(description="the service's upgradeStrategy")
    surge_workers: int = Field(description="the new cluster's workers beside the old one's (0: no new cluster)")
    surge_gpus: int
    surge_cost_per_hour: float | None
    workers_during: int = Field(description="both clusters' workers at their smallest that serves")
    workers_possible: int = Field(description="what the pools and the quota can run (each cluster has its own max)")


class TierCost(Model):
    """One rung of the pools a workload's workers may use (a ladder's order), at its own price."""

    pool: str
    machine_type: str
    provisioning: str
    gpu_cost_per_hour: Range | None = Field(description="min and possible workers, all on this pool's nodes")


class WorkloadCapacity(Model):
    path: str = Field(description="services[i] or jobs[i]")
    name: str
    gpus_per_worker: int
    gpu_source: str = Field(description="the GPU profile or pool of its workers")
    replicas: dict[str, str] = Field(description="min/max: its replicas' GPUs, e.g. '2 x 2 GPU'")
    workers_needed: Range
    workers_possible: int
    limits: list[str] = Field(description="what caps the workers that can run")
    gpu_cost_per_hour: Range | None = Field(description="its workers' share of GPU nodes, min and possible workers")
    tiers: list[TierCost] = Field([], description="per pool it may use, in the ladder's order: the same, at its price")
    models: list[ModelFit] = []
    rollout: RolloutCapacity | None = Field(None, description="a service's: what a new RayCluster beside it needs")
    cold_start: ColdStart | None = Field(None, description="a new replica's time to serve on a new node, by phase")


class TeamCapacity(Model):
    estimate: str = ESTIMATE
    workloads: list[WorkloadCapacity]
    quota_gpus: int
    quota_cost_per_hour: float | None = Field(description="team.quota.gpus at the dearest GPU the team can use")
    platform_cost_per_hour_max: float | None = Field(description="every GPU pool at maxNodes")
    warnings: list[str]


class PoolCost(Model):
    name: str
    node_price: float | None
    nodes: Range = Field(description="idle (minNodes, or its spare nodes if more) to maxNodes")
    spare_nodes: int = Field(description="nodes kept up and idle for the next replicas")
    cost_per_hour: Range | None


class PlatformCapacity(Model):
    estimate: str = ESTIMATE
    pools: list[PoolCost]
    gpu_cost_per_hour: Range | None = Field(
        description="every GPU pool idle (minNodes, or its spare nodes if more) and at maxNodes"
    )
    warnings: list[str]


# -- the platform's side


def platform_capacity(cfg: PlatformStack, prices: list[tuple[GpuNodePool, float | None]]) -> PlatformCapacity:
    """The platform's GPU cost, from each pool's node price (None: unknown)."""
    pools, warnings = [], []
    for pool, price in prices:
        # Idle, a pool keeps its minimum, or its spare nodes if more (placeholders fill empty nodes).
        nodes = Range(min=max(pool.autoscaling.min_nodes, pool.spare_nodes), max=pool.autoscaling.max_nodes)
        if price is None:
            warnings.append(missing(cfg, pool))
        cost = None if price is None else Range(min=round(nodes.min * price, 2), max=round(nodes.max * price, 2))
        pools.append(
            PoolCost(name=pool.name, nodePrice=price, nodes=nodes, spareNodes=pool.spare_nodes, costPerHour=cost)
        )
    known = [p.cost_per_hour for p in pools if p.cost_per_hour]
    total = Range(min=sum(c.min for c in known), max=sum(c.max for c in known)) if known else None
    return PlatformCapacity(pools=pools, gpuCostPerHour=total, warnings=warnings)


# -- the team's side


def workers_needed(replica_gpus: list[float], gpus_per_worker: int) -> int:
    """Worker pods that hold these replicas: Ray places a replica on one node, so fractional replicas
    pack into a worker's GPUs (first fit, largest first) and never across workers."""
    free: list[float] = []
    for need in sorted((g for g in replica_gpus if g > 0), reverse=True):
        slot = next((i for i, left in enumerate(free) if need <= left + 1e-9), None)
        if slot is None:
            free.append(gpus_per_worker - need)
        else:
            free[slot] -= need
    return len(free)


def offload_per_worker(models: list[LLMModel], gpus_per_worker: int) -> tuple[float, int]:
    """(GiB, replicas): the most KV offload that the replicas one worker can hold keep in its host
    memory, at the models' largest scale (Ray places a replica wherever its GPUs are free)."""
    replicas = [
        (model.kv_offload_gib, model.gpus)
        for model in models
        if model.kv_offload_gib
        for _ in range(model.autoscaling.replicas("max"))
    ]
    gib, count, left = 0.0, 0, float(gpus_per_worker)
    for offload, gpus in sorted(replicas, key=lambda r: r[0] / r[1], reverse=True):
        if gpus <= left + 1e-9:
            gib, count, left = gib + offload, count + 1, left - gpus
    return round(gib, 2), count


def model_fit(model: LLMModel, accelerator: str) -> ModelFit:
    """`model` (with complete facts) on `accelerator`."""
    facts, gpu = model.model_facts(), ACCELERATORS[accelerator]
    tp, pp = model.tensor_parallel_size, model.pipeline_parallel_size
    weights = facts.weight_bytes
    kv_per_token = 2 * math.ceil(facts.layers / pp) * max(1, facts.kv_heads // tp) * facts.head_dim * KV_BYTES
    length = model.max_model_len or facts.max_position
    usable = gpu.memory_gib * model.memory_utilization
    weights_gib = weights / (tp * pp) / GIB
    kv_free = max(0.0, usable - weights_gib - RUNTIME_GIB)
    placement = f"TP={tp}" + (f" x PP={pp}" if pp > 1 else "")
    return ModelFit(
        model=f"{model.preset_used or model.model_id} {facts.dtype}",
        accelerator=accelerator,
        placement=f"{model.num_gpus:g} of a GPU" if model.num_gpus else placement,
        weightsGibPerGpu=round(weights_gib, 2),
        usableGibPerGpu=round(usable, 2),
        utilization=model.memory_utilization,
        maxModelLen=length,
        sequences=model.concurrency,
        kvGibFree=round(kv_free, 2),
        kvGibNeeded=round(length * model.concurrency * kv_per_token / GIB, 2),
        # Every GPU of a replica holds its share of each token (its layers, its heads); the offload
        # size is the replica's, over its ranks (vllm/config/cache.py@0.29.0:241-245).
        kvTokens=int(kv_free * GIB / kv_per_token),
        offloadKvTokens=int((model.kv_offload_gib or 0) * GIB / (kv_per_token * tp * pp)),
        msPerTokenFloor=round(weights / tp / (gpu.bandwidth_gbps * 1e9) * 1000, 2),
    )


def _model_errors(path: str, model: LLMModel, placement: Placement) -> tuple[list, list]:
    """(errors, fits) of one model of an LLM app on every accelerator its workers may get."""
    facts = model.model_facts()
    if lacking := facts.missing():
        return [
            f"{path}: no facts to size {model.model_id!r} by: set preset (a model in workloads/facts.py) or give"
            f" facts its {', '.join(lacking)}"
        ], []
    if model.max_model_len and model.max_model_len > facts.max_position:
        return [f"{path}.max_model_len: {model.max_model_len} is above the model's context of {facts.max_position}"], []
    errors, fits = [], []
    for accelerator in placement.accelerators:
        gpu = ACCELERATORS[accelerator]
        fit = model_fit(model, accelerator)
        fits.append(fit)
        if not fit.fits:
            errors.append(f"{path}: {fit.problem()}")
        if model.max_ms_per_token is not None and model.max_ms_per_token < fit.ms_per_token_floor:
            errors.append(
                f"{path}.max_ms_per_token: {model.max_ms_per_token:g} ms, but every token reads"
                f" {fit.weights_gib_per_gpu * model.pipeline_parallel_size:.1f} GiB of weights per TP rank at"
                f" {gpu.bandwidth_gbps} GB/s on {accelerator}: at least {fit.ms_per_token_floor:.1f} ms"
            )
    return errors, fits


def _demand(replica_gpus: list[float]) -> str:
    counts = sorted(Counter(replica_gpus).items(), reverse=True)
    return ", ".join(f"{n} x {g:g} GPU" for g, n in counts if g > 0) or "no GPUs"


def workload_capacity(
    path: str,
    name: str,
    args: Args,
    placement: Placement,
    replicas: Replicas,
    fewest: int,
    others: int,
    quota_gpus: int,
    upgrade_strategy: str | None = None,
) -> tuple[WorkloadCapacity, list[str], list[str]]:
    """A workload's capacity, errors and warnings at its `fewest` workers (replicas.min, or a queued
    job's fixed size), beside the other workloads' `others` GPUs at their smallest; a service's
    (`upgrade_strategy`) also during a rollout."""
    source, per_worker = placement.source, placement.gpus
    errors, fits = [], []
    if args.profile == "cluster":
        for where, model in args.llm_models().items():
            model_errors, model_fits = _model_errors(f"{path}.args{'.' if where else ''}{where}", model, placement)
            errors += model_errors
            fits += model_fits
    limits = {
        "workers.replicas.max": replicas.max,
        f"{'+'.join(placement.pool_names)} at maxNodes {sum(p.max_nodes for p in placement.pools)}": sum(
            p.max_nodes * (p.gpus_per_node // per_worker) for p in placement.pools
        ),
        f"team.quota.gpus {quota_gpus} less the other workloads' {others}": max(0, (quota_gpus - others) // per_worker),
    }
    possible = min(limits.values())
    needed = {scale: workers_needed(args.replica_gpus(scale), per_worker) for scale in ("min", "max")}
    demand: dict[Scale, str] = {scale: _demand(args.replica_gpus(scale)) for scale in ("min", "max")}
    caps = "; ".join(f"{what}: {n}" for what, n in limits.items())
    warnings = []
    if needed["min"] > possible:
        errors.append(
            f"{path}: its minimum ({demand['min']}) needs {needed['min']} worker(s) of {per_worker} GPU(s) from"
            f" {source}, but at most {possible} can run ({caps})"
        )
    elif needed["max"] > possible:
        warnings.append(
            f"{path}: autoscaling can never reach its maximum ({demand['max']}), which needs {needed['max']}"
            f" worker(s) of {per_worker} GPU(s) from {source}; at most {possible} can run ({caps})"
        )
    prices = [p.gpu_hour_price for p in placement.pools if p.gpu_hour_price is not None]
    price = max(prices) * per_worker if prices else None
    rollout = None
    if upgrade_strategy is not None:
        rollout, rollout_error = _rollout(
            path, source, per_worker, max(fewest, needed["min"]), limits, price, upgrade_strategy
        )
        errors += [rollout_error] if rollout_error and needed["min"] <= possible else []
    capacity = WorkloadCapacity(
        path=path,
        name=name,
        gpusPerWorker=per_worker,
        gpuSource=source,
        replicas=demand,
        workersNeeded=Range(**needed),
        workersPossible=possible,
        limits=[f"{what}: {n}" for what, n in limits.items()],
        gpuCostPerHour=None if price is None else Range(min=round(fewest * price, 2), max=round(possible * price, 2)),
        tiers=[
            TierCost(
                pool=pool.name,
                machineType=pool.machine_type,
                provisioning=pool.provisioning,
                gpuCostPerHour=None
                if pool.gpu_hour_price is None
                else Range(
                    min=round(fewest * per_worker * pool.gpu_hour_price, 2),
                    max=round(possible * per_worker * pool.gpu_hour_price, 2),
                ),
            )
            for pool in placement.pools
        ],
        models=fits,
        rollout=rollout,
    )
    return capacity, errors, warnings


def _rollout(
    path: str, source: str, per_worker: int, serving: int, limits: dict[str, int], price: float | None, strategy: str
) -> tuple[RolloutCapacity, str | None]:
    """A service's rollout: a new RayCluster serves once its apps' smallest replicas run (`serving`
    workers), beside the old one at the same; each cluster has its own workers.replicas.max, so the
    pools and the quota decide. KubeRay 1.7.0 starts a NewCluster with the spec's replicas and an
    incremental one from minReplicas, growing it as traffic moves (rs.go:1523-1531, 1818-1829)."""
    surge = 0 if strategy == "None" else serving
    shared = {what: n for what, n in limits.items() if what != "workers.replicas.max"}
    room = min(shared.values())
    rollout = RolloutCapacity(
        strategy=strategy,
        surgeWorkers=surge,
        surgeGpus=surge * per_worker,
        surgeCostPerHour=None if price is None else round(surge * price, 2),
        workersDuring=serving + surge,
        workersPossible=room,
    )
    if strategy != "NewCluster" or serving + surge <= room:
        return rollout, None
    caps = "; ".join(f"{what}: {n}" for what, n in shared.items())
    return rollout, (
        f"{path}: a rollout that starts a new RayCluster (upgradeStrategy NewCluster) runs it beside the serving one:"
        f" {serving} + {surge} worker(s) of {per_worker} GPU(s) from {source}, but at most {room} can run ({caps});"
        " raise them, or set upgradeStrategy: NewClusterWithIncrementalUpgrade (the new cluster grows as traffic"
        " moves to it; the platform's gatewayApi) or None (KubeRay then starts no new cluster: a change of the"
        " cluster spec does not reach the running one until the RayService is recreated)"
    )


def team_capacity(
    quota_gpus: int,
    team_pools: list[GpuPoolExport],
    platform_pools: list[GpuPoolExport],
    workloads: list[WorkloadCapacity],
    warnings: list[str],
) -> TeamCapacity:
    """The team's capacity report: its workloads', what its quota can spend at the dearest GPU of
    the pools it can use, and the platform's GPU pools at maxNodes."""
    prices = [p.gpu_hour_price for p in team_pools if p.gpu_hour_price is not None]
    costs = [p.node_price * p.max_nodes for p in platform_pools if p.node_price is not None]
    return TeamCapacity(
        workloads=workloads,
        quotaGpus=quota_gpus,
        quotaCostPerHour=round(quota_gpus * max(prices), 2) if prices else None,
        platformCostPerHourMax=round(sum(costs), 2) if costs else None,
        warnings=warnings,
    )
