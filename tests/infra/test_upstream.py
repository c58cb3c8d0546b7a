"""The vendored upstream artifacts (upstream/): exactly what the manifest lists, and `make upstream`
re-fetches them from their pinned commits. Nothing in the repository reads the shared folder beside it."""

import shutil
import subprocess

import pytest

from tools import upstream
from tools.render import ROOT


def test_the_vendored_files_are_the_ones_the_manifest_pins():
    assert upstream.problems() == []
    assert upstream.main(["check"]) == 0


def _copy(tmp_path):
    folder = tmp_path / "upstream"
    shutil.copytree(upstream.FOLDER, folder)
    return folder


def test_a_changed_missing_or_stray_file_is_caught(tmp_path):
    folder = _copy(tmp_path)
    (folder / "kuberay" / "features.go.txt").write_text("changed")
    (folder / "kueue" / "kube_features.go.txt").unlink()
    (folder / "gmp" / "extra.yaml").write_text("{}")
    assert upstream.problems(folder) == [
        "kuberay/features.go.txt: differs from the sha256 in upstream/manifest.json",
        "kueue/kube_features.go.txt: missing (make upstream fetches it)",
        "gmp/extra.yaml: not in upstream/manifest.json",
    ]


def _raw_tree(tmp_path, folder) -> str:
    """A stand-in for raw.githubusercontent.com: <repository>/<commit>/<path> of every vendored file."""
    data = upstream.manifest(folder)
    for name, entry in data["files"].items():
        source = data["sources"][entry["source"]]
        target = tmp_path / "raw" / source["repository"] / source["commit"] / entry["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / name, target)
    return (tmp_path / "raw").as_uri()


def test_fetch_takes_each_file_from_its_pinned_commit_and_records_what_changed(tmp_path):
    folder = _copy(tmp_path)
    raw = _raw_tree(tmp_path, folder)
    assert upstream.fetch(folder, raw, verify=True) == []
    # upstream at the pinned commit differs from the copy (a bumped ref, or a tampered copy)
    entry = upstream.manifest(folder)["files"]["kueue/chart-values.yaml"]
    commit = upstream.manifest(folder)["sources"]["kueue"]["commit"]
    (tmp_path / "raw" / "kubernetes-sigs/kueue" / commit / entry["path"]).write_text("new: values\n")
    assert upstream.fetch(folder, raw, verify=True) == ["kueue/chart-values.yaml"]
    assert upstream.problems(folder) == []  # --verify changed nothing
    assert upstream.fetch(folder, raw) == ["kueue/chart-values.yaml"]
    assert (folder / "kueue" / "chart-values.yaml").read_text() == "new: values\n"
    assert upstream.problems(folder) == []  # the manifest took the new sha256


def test_nothing_in_the_repository_reads_the_shared_folder_beside_it():
    beside = "/".join(("..", "shared"))  # spelt so that this file does not name it
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    mentions = [
        name
        for name in files
        if not name.startswith("tests/golden/")
        and (ROOT / name).is_file()
        and beside in (ROOT / name).read_text(errors="replace")
    ]
    assert mentions == []


def test_a_fetch_that_cannot_reach_upstream_says_so_in_one_line_and_changes_nothing(tmp_path, capsys):
    folder = _copy(tmp_path)
    raw = _raw_tree(tmp_path, folder)
    commit = upstream.manifest(folder)["sources"]["kueue"]["commit"]
    entry = upstream.manifest(folder)["files"]["kueue/chart-values.yaml"]
    (tmp_path / "raw" / "kubernetes-sigs/kueue" / commit / entry["path"]).write_text("new: values\n")
    shutil.rmtree(tmp_path / "raw" / "GoogleCloudPlatform")  # the last source in the manifest is gone
    with pytest.raises(upstream.FetchError, match=r"^gmp/crds/\S+: cannot fetch file:"):
        upstream.fetch(folder, raw)
    assert upstream.problems(folder) == []  # kueue's new values were not written either
    assert upstream.main(["fetch", "--base-url", "file:///nonexistent"]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith("(nothing was changed)")
