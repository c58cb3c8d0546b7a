"""Payload code shipped by content hash: `workloads/` as a byte-for-byte reproducible zip, uploaded
to the platform's workload bucket as `payloads/<team>/<sha256>.zip`, and used as Ray's working_dir.

Same tree -> same bytes -> same URI -> no change to any RayService or RayJob. Each team owns the
objects under its own prefix, so no two stacks own one object: one team's update or destroy never
deletes the archive another team's workers start from, and a team's identity reads only its own
prefix (components/team_identity.py). The zip holds
`workloads/` and `payload.json` at its top level: Ray strips a lone top-level folder when it
unpacks a working_dir, which would break `import workloads...`.
"""

import hashlib
import json
import zipfile
from io import BytesIO
from pathlib import Path

import pulumi
import pulumi_gcp as gcp

from components.conventions import team_prefix

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ROOT / "workloads"
BUILD = ROOT / "build" / "payloads"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold: no build-time timestamps
SKIPPED = {"__pycache__", ".pytest_cache"}


def _files(source: Path) -> list[Path]:
    return sorted(p for p in source.rglob("*") if p.is_file() and not SKIPPED & set(p.parts) and p.suffix != ".pyc")


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def build_archive(source: Path = WORKLOADS) -> bytes:
    """The zip of `source` (as `workloads/...`): sorted entries, fixed times and modes."""
    files = {f"workloads/{p.relative_to(source).as_posix()}": p.read_bytes() for p in _files(source)}
    manifest = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        _add(archive, "payload.json", json.dumps(manifest, indent=1, sort_keys=True).encode())
        for name, data in files.items():
            _add(archive, name, data)
    return buffer.getvalue()


def write_archive() -> Path:
    """build/payloads/<sha256>.zip of the current workloads/ (the stack uploads it, `make local` runs it)."""
    data = build_archive(WORKLOADS)
    path = BUILD / f"{hashlib.sha256(data).hexdigest()}.zip"
    BUILD.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


class PayloadArchive(pulumi.ComponentResource):
    """The team's copy of workloads/ in the platform bucket; `uri` is the working_dir to use."""

    def __init__(self, team: str, bucket: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None):
        name = f"{team}-payload"
        super().__init__("rayplane:team:PayloadArchive", name, None, opts)
        path = write_archive()
        digest = path.stem
        key = f"{team_prefix(team)}{digest}.zip"  # a new name per content: the old object stays until replaced
        self.object = gcp.storage.BucketObject(
            name,
            bucket=bucket,
            name=key,
            source=pulumi.FileAsset(str(path.relative_to(ROOT))),  # relative: the program runs from the root
            content_type="application/zip",
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.digest = digest
        self.uri = pulumi.Output.concat("gs://", bucket, f"/{key}")
        self.register_outputs({"uri": self.uri})
