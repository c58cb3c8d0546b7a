"""The pinned upstream artifacts in upstream/ (CRDs, chart values, admission rules as source text):
what the real cluster accepts, vendored so that the deploy-truth tests run in every clone.
upstream/manifest.json names each file's repository, ref, commit, path and sha256.

    python -m tools.upstream check            # offline: every listed file is there and whole, nothing else is
    python -m tools.upstream fetch [--verify] # every file again from GitHub at its source's commit

`fetch` writes what changed and its new sha256 into the manifest (review `git diff upstream/`);
with `--verify` it changes nothing and fails if any vendored file differs from upstream's. Bumping
a version: its ref and commit in the manifest (and components/versions.py), then `make upstream`.
"""

import argparse
import hashlib
import json
import sys
import urllib.request
from pathlib import Path

FOLDER = Path(__file__).resolve().parents[1] / "upstream"
RAW = "https://raw.githubusercontent.com"
OWN_FILES = {"README.md", "manifest.json"}  # ours, not upstream's


class FetchError(Exception):
    """A file could not be fetched (no network, a wrong commit or path)."""


def manifest(folder: Path = FOLDER) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def problems(folder: Path = FOLDER) -> list[str]:
    """What is wrong with the vendored copy: files missing, changed or not in the manifest."""
    listed = manifest(folder)["files"]
    found = []
    for name, entry in listed.items():
        path = folder / name
        if not path.is_file():
            found.append(f"{name}: missing (make upstream fetches it)")
        elif _sha256(path.read_bytes()) != entry["sha256"]:
            found.append(f"{name}: differs from the sha256 in upstream/manifest.json")
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    found += [f"{name}: not in upstream/manifest.json" for name in sorted(present - set(listed) - OWN_FILES)]
    return found


def fetch(folder: Path = FOLDER, base_url: str = RAW, verify: bool = False) -> list[str]:
    """Every file at its source's commit. Returns the names whose content changed; unless `verify`,
    writes them and their sha256 (only once every file has arrived)."""
    data = manifest(folder)
    fetched = {}
    for name, entry in data["files"].items():
        source = data["sources"][entry["source"]]
        url = f"{base_url}/{source['repository']}/{source['commit']}/{entry['path']}"
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                fetched[name] = response.read()
        except OSError as exc:  # URLError and HTTPError are OSErrors
            raise FetchError(f"{name}: cannot fetch {url}: {getattr(exc, 'reason', exc)}") from None
    changed = [name for name, content in fetched.items() if _differs(folder / name, content)]
    if changed and not verify:
        for name in changed:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(fetched[name])
            data["files"][name]["sha256"] = _sha256(fetched[name])
        (folder / "manifest.json").write_text(json.dumps(data, indent=2) + "\n")
    return changed


def _differs(path: Path, content: bytes) -> bool:
    return not path.is_file() or path.read_bytes() != content


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="offline: the vendored files are the ones the manifest lists")
    fetch_cmd = commands.add_parser("fetch", help="fetch every file at its pinned commit")
    fetch_cmd.add_argument("--verify", action="store_true", help="change nothing; fail if upstream differs")
    fetch_cmd.add_argument("--base-url", default=RAW, help=f"where <repository>/<commit>/<path> is (default {RAW})")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        try:
            changed = fetch(base_url=args.base_url, verify=args.verify)
        except FetchError as exc:
            print(f"{exc} (nothing was changed)", file=sys.stderr)
            return 1
        for name in changed:
            print(f"{name}: {'differs from upstream' if args.verify else 'updated'}")
        print(f"{len(manifest()['files'])} files fetched, {len(changed)} changed")
        if args.verify and changed:
            return 1
    found = problems()
    for problem in found:
        print(problem, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
