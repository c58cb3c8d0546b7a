"""What a change does to every stack's render, as a pull-request comment (Markdown):

    python -m tools.diff --base origin/main [--out build/diff/comment.md]

Renders the stacks at `--base` (a git worktree) and in this working tree with tools.render (offline:
no credentials, no cloud; secrets stay masked), then per stack: the resources added, changed and
removed, and a unified diff of the capacity report (fits, decode floors, costs), the manifests and
the changed resources' inputs, each stack in a collapsed section. The review surface beside
`pulumi preview`, for forks too.
"""

import argparse
import difflib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from components import rollout
from tools.render import ROOT

MARKER = "<!-- rayplane-render-diff -->"  # the comment is found by it and edited in place
WORK = ROOT / "build" / "diff"
MAX_DIFF_LINES = 400  # per stack; GitHub caps a comment at 65,536 characters


def render_tree(tree: Path, out: Path) -> str | None:
    """Render every stack of a checkout to `out`; the render's error output if it failed."""
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run(
        [sys.executable, "-m", "tools.render", "--out", str(out)], cwd=tree, capture_output=True, text=True
    )
    return None if done.returncode == 0 else (done.stderr.strip() or done.stdout.strip())


def checkout(base: str, where: Path) -> None:
    subprocess.run(["git", "worktree", "remove", "--force", str(where)], cwd=ROOT, capture_output=True)
    subprocess.run(["git", "worktree", "add", "--detach", str(where), base], cwd=ROOT, check=True, capture_output=True)


def _render(folder: Path) -> tuple[dict[tuple[str, str], dict], dict | None]:
    """(type, name) -> what a deploy would act on (the inputs, and whether Pulumi protects it), and
    the capacity report. A base from before the capacity report wrote a bare list of resources."""
    path = folder / "resources.json"
    written = json.loads(path.read_text()) if path.exists() else []
    records, capacity = (written, None) if isinstance(written, list) else (written["resources"], written["capacity"])
    resources = {(r["type"], r["name"]): {"inputs": r["inputs"], "protect": r.get("protect", False)} for r in records}
    return resources, capacity


def _files(folder: Path) -> dict[str, str]:
    return (
        {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*.yaml"))} if folder.exists() else {}
    )


def _unified(old: str, new: str, name: str) -> list[str]:
    return list(difflib.unified_diff(old.splitlines(), new.splitlines(), f"a/{name}", f"b/{name}", lineterm=""))


RAY_KINDS = {"kubernetes:ray.io/v1:RayService": rollout.rayservice, "kubernetes:ray.io/v1:RayJob": rollout.rayjob}


def rollout_lines(old: dict, new: dict, keys: list[tuple[str, str]], capacity: dict | None) -> list[str]:
    """What KubeRay will do with each added or changed RayService and RayJob (components/rollout.py),
    and for a new RayCluster beside a serving one, what it takes while both run."""
    workloads = {w["name"]: w for w in (capacity or {}).get("workloads", [])}
    lines = []
    for key in keys:
        if key[0] not in RAY_KINDS:
            continue
        spec = new[key]["inputs"]["spec"]
        found = RAY_KINDS[key[0]](old[key]["inputs"]["spec"] if key in old else None, spec)
        name = new[key]["inputs"]["metadata"]["name"]
        line = f"- rollout of `{name}` ({key[0].rsplit(':', 1)[1]}): {found.says}"
        surge = (workloads.get(name) or {}).get("rollout")
        if found.kind in rollout.NEW_CLUSTER and surge:
            w = workloads[name]
            cost = "" if surge["surgeCostPerHour"] is None else f", +${surge['surgeCostPerHour']:,.2f}/h"
            line += (
                f"; +{surge['surgeWorkers']} worker(s), {surge['surgeGpus']} GPU(s) from {w['gpuSource']}{cost}"
                f" while both run: {surge['workersDuring']} of {surge['workersPossible']} workers possible"
            )
        lines.append(line)
    return lines


def cold_start_lines(old_capacity: dict | None, new_capacity: dict | None) -> list[str]:
    """Each workload whose cold start changes, on a new node and on a spare one: its total and the
    phases that move."""
    old = {w["name"]: w.get("coldStart") or {} for w in (old_capacity or {}).get("workloads", [])}
    lines = []
    for w in (new_capacity or {}).get("workloads", []):
        was, now = old.get(w["name"], {}), w.get("coldStart") or {}
        for where, before, after in (("a new node", was, now), ("a spare node", was.get("spare"), now.get("spare"))):
            lines += _budget_change(w["name"], where, before or None, after or None)
    return lines


def _budget_change(name: str, where: str, before: dict | None, after: dict | None) -> list[str]:
    if after is None or (before and before["phases"] == after["phases"]):
        return []
    if before is None:
        return [f"- cold start of `{name}` on {where}: {after['seconds']}s"]
    was = {p["name"]: p["seconds"] for p in before["phases"]}
    now = {p["name"]: p["seconds"] for p in after["phases"]}
    moved = ", ".join(
        f"{phase} {was.get(phase, 0)}s → {now.get(phase, 0)}s"
        for phase in [*now, *(n for n in was if n not in now)]
        if was.get(phase, 0) != now.get(phase, 0)
    )
    return [f"- cold start of `{name}` on {where}: {before['seconds']}s → {after['seconds']}s ({moved})"]


def stack_section(stack: str, base: Path, head: Path) -> tuple[str, bool]:
    """A stack's section and whether anything changed in it."""
    (old, old_capacity), (new, new_capacity) = _render(base / stack), _render(head / stack)
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    changed = sorted(key for key in set(old) & set(new) if old[key] != new[key])
    dump = lambda r: json.dumps(r, indent=2, sort_keys=True)  # noqa: E731
    capacity = _unified(dump(old_capacity), dump(new_capacity), "capacity") if old_capacity != new_capacity else []
    if not (added or removed or changed or capacity):
        return f"- **{stack}**: no change", False
    lines = list(capacity)  # a copy: `capacity` still says whether the report changed
    old_files, new_files = _files(base / stack), _files(head / stack)
    for name in sorted(set(old_files) | set(new_files)):
        lines += _unified(old_files.get(name, ""), new_files.get(name, ""), name)
    for key in changed:
        if (
            key[0].startswith("kubernetes:")
            and "kind" in new[key]["inputs"]
            and old[key]["protect"] == new[key]["protect"]
        ):
            continue  # shown as its manifest above
        lines += _unified(dump(old[key]), dump(new[key]), f"{key[1]} ({key[0]})")
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"... {len(lines) - MAX_DIFF_LINES} more lines: run `make diff` locally"]
    summary = f"<b>{stack}</b>: {len(added)} to add, {len(changed)} to change, {len(removed)} to remove"
    summary += ", capacity or cost changes" if capacity else ""
    listing = rollout_lines(old, new, added + changed, new_capacity) + cold_start_lines(old_capacity, new_capacity)
    listing += [f"- add `{name}` ({type_})" for type_, name in added]
    listing += [f"- change `{name}` ({type_})" for type_, name in changed]
    listing += [f"- remove `{name}` ({type_})" for type_, name in removed]
    body = "\n".join(listing) + "\n\n```diff\n" + "\n".join(lines) + "\n```"
    return f"<details><summary>{summary}</summary>\n\n{body}\n</details>", True


def comment(base_out: Path, head_out: Path, base: str, errors: dict[str, str]) -> str:
    stacks = sorted(
        {p.name for p in base_out.iterdir() if p.is_dir()} | {p.name for p in head_out.iterdir() if p.is_dir()}
    )
    sections = [stack_section(stack, base_out, head_out) for stack in stacks]
    changed = sum(1 for _, did in sections if did)
    lines = [MARKER, f"### Render diff against `{base}`: {changed} of {len(stacks)} stack(s) change", ""]
    lines += [f"**The {side} render failed:**\n```\n{error}\n```" for side, error in errors.items()]
    lines += [section for section, _ in sections]
    lines += ["", "_Offline renders (`make diff`), secrets masked; `pulumi preview` shows what the cloud would do._"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the git revision to compare with (e.g. origin/main)")
    parser.add_argument("--out", type=Path, help="write the comment here (default: print it)")
    args = parser.parse_args(argv)
    tree = WORK / "base-tree"
    checkout(args.base, tree)
    try:
        errors = {}
        if error := render_tree(tree, WORK / "base"):
            errors["base"] = error
        if error := render_tree(ROOT, WORK / "head"):
            errors["head"] = error
        text = comment(WORK / "base", WORK / "head", args.base, errors)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    else:
        print(text, end="")
    return 1 if "head" in errors else 0


if __name__ == "__main__":
    sys.exit(main())
