"""A new replica's cold start at plan time: from "the autoscaler wants one" to "it serves", by
phase, each figure with where it comes from: on a new GPU node, the worst that autoscaling meets,
and on a spare one where the workload's pools keep some (components/spare.py). Published figures
are quoted from their source; where none is published the figure is marked `assumed` and says why
(a measurement of your own is the better figure: change it here).
"""

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from components.config import Model
from components.config.platform import ARTIFACT_REGISTRY_DOCKER
from workloads.config import STREAMED, Args
from workloads.facts import GIB

Kind = Literal["published", "assumed"]


@dataclass(frozen=True)
class Figure:
    value: float
    unit: str
    kind: Kind
    source: str


FIGURES = {
    "node_s": Figure(
        120,
        "s",
        "published",
        "cloud.google.com/kubernetes-engine/docs/how-to/capacity-provisioning, of the nodes Autopilot and node"
        " auto-provisioning add: 'Each new node takes approximately 80 to 120 seconds to boot' (the longer taken,"
        " for a Standard pool's GPU VM too, which is no faster; its driver is `driver_s`; Autopilot's 'up to four"
        " times faster' GPU nodes, docs/concepts/fast-starting-nodes, are not for Standard clusters)",
    ),
    "spare_s": Figure(
        5,
        "s",
        "assumed",
        "a pod that finds no room preempts a spare node's placeholder (priority -10, no grace period) and is bound"
        " there (components/spare.py): no figure is published for it; seconds",
    ),
    "driver_s": Figure(
        30,
        "s",
        "published",
        "github.com/GoogleCloudPlatform/ai-on-gke best-practices/startup-latency.md: 'driver installation takes"
        " ~30 seconds'",
    ),
    "image_gib": Figure(
        10,
        "GiB",
        "published",
        "github.com/ray-project/ray/issues/46378: 'a typical GPU ray-ml image is around 10GiB (compressed layers)'"
        " (no size of ray-llm is published; vLLM's own image is 'around 12 GB', vllm-project/vllm#27154)",
    ),
    "image_gib_per_s": Figure(
        5.4e9 / 2**30 / 191,
        "GiB/s",
        "published",
        "ai-on-gke best-practices/startup-latency.md: 'Nvidia Triton Server (5.4GB container image) end-to-end"
        " startup time ... 191s' without image streaming (pull, unpack and start: 5.4 GB in 191 s)",
    ),
    "image_streamed_s": Figure(
        30,
        "s",
        "published",
        "ai-on-gke best-practices/startup-latency.md: the same Triton start 'can be reduced from 191s to 30s' with"
        " image streaming, which streams images in Artifact Registry (cloud.google.com/kubernetes-engine/docs/how-to/"
        "image-streaming; its first pull of an image on any node is still whole: 'You might not notice the benefits"
        " ... during the first pull')",
    ),
    "image_cached_s": Figure(
        5,
        "s",
        "assumed",
        "GKE publishes no time for an image preloaded on a secondary boot disk, only 'Reduced latency when pulling"
        " large container images' (cloud.google.com/kubernetes-engine/docs/how-to/data-container-image-preloading;"
        " the disk is made in parallel with the node): its layers are on the node's own disk, seconds",
    ),
    "dependencies_s": Figure(
        60,
        "s",
        "assumed",
        "no figure is published for Ray's runtime_env pip, which would resolve and install the payload's packages"
        " from PyPI through Cloud NAT in every new worker (the naive path; rayplane's image has them)",
    ),
    "download_gib_per_s": Figure(
        0.5,
        "GiB/s",
        "assumed",
        "Ray Serve LLM copies a gs:// model to local disk first (ray/llm/_internal/common/utils/download_utils.py"
        " CloudModelDownloader, through pyarrow copy_files); no throughput is published for it",
    ),
    "disk_gib_per_s": Figure(
        1.03,
        "GiB/s",
        "published",
        "github.com/run-ai/runai-model-streamer docs/src/benchmarks.md: 'AWS Gp3 | 14.36 | 1.03' (seconds and"
        " GiB/s for Llama-3-8B bf16 from a network disk, read by the streamer; vLLM's default loader is no faster);"
        " also taken for the streamer reading Cloud Storage, whose published figures are charts without numbers"
        " (cloud.google.com/blog, 'Accelerate model downloads on GKE with NVIDIA Run:ai Model Streamer')",
    ),
    "engine_s": Figure(
        34,
        "s",
        "published",
        "vllm-project/vllm#20264: 'init engine (profile, create kv cache, warmup model) took 34.11 seconds'"
        " (a 3.4 GiB model, its torch.compile cache reused: a start from the team's cache, team.compileCache)",
    ),
    "compile_s": Figure(
        60,
        "s",
        "published",
        "vllm-project/vllm#19204: 'torch.compile takes 59.90 s in total': what a start without a cache adds"
        " (without team.compileCache a new worker's disk has none; the 7.51 s that loading the cache took in"
        " engine_s's start are then counted twice)",
    ),
    "replica_s": Figure(
        10,
        "s",
        "assumed",
        "no figure is published for a payload without an engine (a Serve replica's constructor, a job's script)"
        " loading a small model: seconds",
    ),
    "upscale_delay_s": Figure(
        30,
        "s",
        "published",
        "ray/serve/config.py AutoscalingConfig.upscale_delay_s: default 30.0 ('How long to wait before scaling up"
        " replicas')",
    ),
}


class Phase(Model):
    """One phase of a cold start (seconds rounded)."""

    name: str = Field(description="upscale delay (a service's), node, driver, image, dependencies, weights or engine")
    seconds: int = Field(description="its estimate")
    how: str = Field(description="how the estimate is made, and from which figures (`coldStart.figures`)")


class Budget(Model):
    seconds: int = Field(description="every phase: a service's from Serve's first wish for a replica to it serving")
    phases: list[Phase] = Field(description="in order")

    @property
    def brief(self) -> str:
        return ", ".join(f"{p.name} {p.seconds}s" for p in self.phases if p.seconds)


class ColdStart(Budget):
    """On a new node (`seconds`, `phases`), and on a spare node where its pools keep some."""

    spare: Budget | None = Field(
        None, description="on a spare node of its pools (nodePools[].spareNodes): as many new replicas as they keep"
    )

    def too_slow(self, path: str, limit_s: int, spare_covers: bool) -> list[str]:
        """The warning for an autoscaled service whose objective allows its new replicas `limit_s`:
        by the spare-node estimate if its pools keep a spare node for every worker it can add
        (`spare_covers`; other workloads may take them first), else by the new-node one."""
        slowest, where = (self.spare, "on a spare node") if self.spare and spare_covers else (self, "on a new node")
        if slowest.seconds <= limit_s:
            return []
        return [
            f"{path}: a new replica {where} takes about {slowest.seconds}s from Serve's wish for it to serving"
            f" ({slowest.brief}), beyond slo.scaleUpWithinS {limit_s}s: its traffic waits that long for more replicas"
            " (docs/capacity.md, Cold start)"
        ]


def _s(name: str) -> float:
    return FIGURES[name].value


def _phase(name: str, seconds: float, how: str) -> Phase:
    return Phase(name=name, seconds=round(seconds), how=how)


def weights(args: Args) -> tuple[float, bool] | None:
    """The largest of the payload's LLMs, whole in GiB (each new replica reads all of its model), and
    whether every model is streamed (vLLM's runai_streamer); None if it runs none."""
    models = list(args.llm_models().values())
    if not models:
        return None
    gib = max(m.model_facts().weight_bytes / GIB for m in models)
    return gib, all(m.load_format == STREAMED for m in models)


def streamed(image: str) -> bool:
    """Whether GKE streams `image` (every node pool has image streaming): an Artifact Registry one."""
    return image.split("/")[0].endswith(ARTIFACT_REGISTRY_DOCKER)


def workload_cold_start(
    args: Args, image: str, service: bool, spare: bool, compile_cached: bool, image_cached: bool
) -> ColdStart:
    """rayplane's path: the packages in the image (components/image.py), never pip at pod start;
    `spare`: its pools keep spare nodes; `compile_cached`: its team shares vLLM's compile cache;
    `image_cached`: every pool it may run on preloads the image on a secondary boot disk."""
    gib, stream = weights(args) or (None, False)
    kwargs = {
        "image_streamed": streamed(image),
        "image_cached": image_cached,
        "weights_streamed": stream,
        "service": service,
        "compile_cached": compile_cached,
    }
    cold = budget(gib, **kwargs)
    if not spare:
        return ColdStart(**cold.model_dump())
    return ColdStart(**cold.model_dump(), spare=budget(gib, **kwargs, spare=True))


def _image_phase(cached: bool, streamed: bool) -> Phase:
    if cached:
        return _phase(
            "image", _s("image_cached_s"), "the Ray image from the node's secondary boot disk (image_cached_s)"
        )
    if streamed:
        return _phase(
            "image", _s("image_streamed_s"), "the Ray image streamed from Artifact Registry (image_streamed_s)"
        )
    return _phase(
        "image", _s("image_gib") / _s("image_gib_per_s"), "the Ray image pulled whole (image_gib / image_gib_per_s)"
    )


def budget(
    weights_gib: float | None,
    *,
    image_streamed: bool,
    weights_streamed: bool,
    service: bool,
    pip: bool = False,
    spare: bool = False,
    compile_cached: bool = False,
    image_cached: bool = False,
) -> Budget:
    """A replica (or a job's worker) on a new node, or on a `spare` one: a service's Serve waiting
    out its upscale delay, the image preloaded on the node (`image_cached`), streamed or pulled whole,
    the payload's packages from PyPI at pod start (`pip`: the naive path only), an LLM's weights
    (`weights_gib` for the whole model; None: no LLM) streamed into the engine or copied to local disk
    and then loaded, then vLLM's engine, which compiles its model or loads it `compile_cached` (the
    one that filled the cache compiled it)."""
    image = _image_phase(image_cached, image_streamed)
    delay = [_phase("upscale delay", _s("upscale_delay_s"), "Serve waits before it asks (upscale_delay_s)")]
    node = [
        _phase("node", seconds=_s("node_s"), how="a new GPU node (node_s)"),
        _phase("driver", seconds=_s("driver_s"), how="the NVIDIA driver is installed (driver_s)"),
    ]
    if spare:
        node = [
            _phase("node", seconds=_s("spare_s"), how="a spare node's placeholder preempted (spare_s)"),
            _phase("driver", seconds=0, how="installed when the spare node came up"),
        ]
    phases = [
        *(delay if service else []),
        *node,
        image,
        _phase(
            "dependencies",
            seconds=_s("dependencies_s") if pip else 0,
            how="runtime_env pip at pod start (dependencies_s)" if pip else "in the image (images/ray)",
        ),
    ]
    if weights_gib is not None:
        read = weights_gib / _s("disk_gib_per_s")
        compile_ = 0 if compile_cached else _s("compile_s")
        how = (
            "its compiled model from the team's cache" if compile_cached else "torch.compile with no cache (compile_s)"
        )
        phases += [
            _phase("weights", seconds=read, how=f"{weights_gib:.1f} GiB streamed into vLLM (disk_gib_per_s)")
            if weights_streamed
            else _phase(
                "weights",
                seconds=weights_gib / _s("download_gib_per_s") + read,
                how=f"{weights_gib:.1f} GiB copied to local disk (download_gib_per_s), then read (disk_gib_per_s)",
            ),
            _phase(
                "engine",
                seconds=_s("engine_s") + compile_,
                how=f"vLLM's engine: profile, KV cache, warm-up (engine_s), {how}",
            ),
        ]
    else:
        phases.append(_phase("engine", seconds=_s("replica_s"), how="the payload's own start (replica_s)"))
    return Budget(seconds=sum(p.seconds for p in phases), phases=phases)
