"""The review tools of a pull request: which stacks a change touches (the preview matrix) and the
render diff, tested on two real commits."""

import json
import subprocess
import sys

import pytest

from components.config import ConfigError
from tools import changed, diff
from tools import render as render_tool
from tools.render import ROOT

PLATFORMS, TEAMS = ["dev", "prod"], ["assistant-dev", "search-dev", "search-prod"]


@pytest.mark.parametrize(
    ("files", "stacks"),
    [
        (["README.md"], []),
        (["stacks/Pulumi.search-dev.yaml"], ["search-dev"]),
        (["stacks/Pulumi.dev.yaml"], ["dev", "assistant-dev", "search-dev"]),  # its teams read its exports
        (["workloads/serving/llm.py"], TEAMS),  # a new payload archive for every team
        (["components/cluster.py"], PLATFORMS + TEAMS),
        (["pyproject.toml"], PLATFORMS + TEAMS),
        (["images/ray/requirements.txt"], PLATFORMS + TEAMS),  # a new image: built, exported, rolled out
        (["policies/rules.py"], PLATFORMS + TEAMS),  # the policy pack judges every stack's preview
        (["stacks/Pulumi.bootstrap.yaml"], []),  # an administrator runs it, never CI
    ],
)
def test_a_change_touches_the_stacks_whose_render_it_can_change(files, stacks):
    assert changed.touched(files) == stacks


def test_a_base_git_does_not_know_touches_every_stack():
    assert changed.touched(changed.changed_files("0" * 40)) == PLATFORMS + TEAMS  # a first push, a force-push


def test_each_stack_runs_in_the_environment_of_its_project():
    assert changed.environments() == {
        "dev": "dev",
        "assistant-dev": "dev",
        "search-dev": "dev",
        "prod": "prod",
        "search-prod": "prod",
    }
    entry = lambda stack: {"stack": stack, "environment": changed.environments()[stack]}  # noqa: E731
    matrices = changed.matrices(["dev", "prod", "search-dev", "search-prod"])
    assert matrices["stacks"] == [entry(s) for s in ("dev", "prod", "search-dev", "search-prod")]
    assert (matrices["dev-platforms"], matrices["dev-teams"]) == ([entry("dev")], [entry("search-dev")])
    assert (matrices["prod-platforms"], matrices["prod-teams"]) == ([entry("prod")], [entry("search-prod")])
    # before prod's gate: its platform, not the team that reads it (previewed after the platform's up)
    assert (matrices["prod-gate"], matrices["prod-team-gate"]) == ([entry("prod")], [entry("search-prod")])
    alone = changed.matrices(["search-prod"])
    assert (alone["prod-gate"], alone["prod-team-gate"]) == ([entry("search-prod")], [])


def test_a_stack_not_created_yet_is_left_out(stacks):
    assert changed.created(["dev", "search-dev"]) == ([], ["dev", "search-dev"])  # as shipped: no data keys
    path = stacks / "Pulumi.dev.yaml"
    path.write_text("encryptedkey: CiQAbc=\n" + path.read_text())
    assert changed.created(["dev", "search-dev"]) == (["dev"], ["search-dev"])


def test_a_stack_that_lost_its_data_key_is_an_error(tmp_path, monkeypatch):
    """Not a stack to skip: the deploy base would move past a change that was never deployed."""
    clone = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    git = ["git", "-C", str(clone), "-c", "user.name=test", "-c", "user.email=test@example.com"]
    stack = clone / "stacks" / "Pulumi.dev.yaml"
    text = stack.read_text()
    stack.write_text("encryptedkey: CiQAbc=\n" + text)
    subprocess.run([*git, "commit", "--quiet", "-am", "dev: created"], check=True)
    stack.write_text(text)  # the line dropped again
    monkeypatch.setattr(changed, "ROOT", clone)
    monkeypatch.setattr(render_tool, "STACKS", clone / "stacks")
    with pytest.raises(ConfigError) as exc:
        changed.created(["dev"], "HEAD")
    assert exc.value.errors == ["stacks/Pulumi.dev.yaml: its encryptedkey: is gone (it had one at HEAD); put it back"]
    assert changed.created(["dev"], "HEAD~1") == ([], ["dev"])  # never had one: not created yet


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        (
            "gcp:project: rayplane-dev",
            "gcp:project: rayplane-elsewhere",
            "stacks/Pulumi.search-dev.yaml: gcp:project rayplane-elsewhere is no environment's project",
        ),
        (  # the environment's state bucket holds its stacks: a team reads its platform there
            "organization/rayplane/dev",
            "organization/rayplane/prod",
            "stacks/Pulumi.search-dev.yaml: its platform stack prod is in environment prod, it is in dev: a team"
            " stack reads its platform in its own environment's state",
        ),
    ],
    ids=["project-of-no-environment", "platform-in-another-environment"],
)
def test_a_stack_ci_could_not_place_is_an_error(old, new, error, stacks):
    path = stacks / "Pulumi.search-dev.yaml"
    path.write_text(path.read_text().replace(old, new))
    with pytest.raises(ConfigError) as exc:
        changed.environments()
    assert exc.value.errors == [error]


@pytest.fixture(scope="module")
def two_commits(tmp_path_factory):
    """A clone of this repository with one more commit: a one-line change of search-dev's stack."""
    clone = tmp_path_factory.mktemp("review") / "repo"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    stack = clone / "stacks" / "Pulumi.search-dev.yaml"
    text = stack.read_text()
    assert text.count("replicas: {min: 1, max: 2}") == 2
    stack.write_text(text.replace("replicas: {min: 1, max: 2}", "replicas: {min: 1, max: 3}", 1))
    git = ["git", "-C", str(clone), "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run([*git, "commit", "--quiet", "-am", "search-dev: one more embed worker"], check=True)
    return clone


def test_the_diff_shows_a_one_line_change_in_that_stacks_section_only(two_commits, tmp_path):
    out = tmp_path / "comment.md"
    done = subprocess.run(
        [sys.executable, "-m", "tools.diff", "--base", "HEAD~1", "--out", str(out)],
        cwd=two_commits,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    comment = out.read_text()
    assert comment.startswith("<!-- rayplane-render-diff -->\n### Render diff against `HEAD~1`: 1 of 6 stack(s) change")
    for stack in ("bootstrap", "dev", "prod", "assistant-dev", "search-prod"):
        assert f"- **{stack}**: no change" in comment
    section = comment.split("<b>search-dev</b>", 1)[1].split("</details>", 1)[0]
    # the RayService, and the dashboard's cost tile (the capacity report's figures)
    assert ": 0 to add, 2 to change, 0 to remove, capacity or cost changes" in section
    assert "- change `search-dashboard` (gcp:monitoring/dashboard:Dashboard)" in section
    # and what KubeRay does with it: replica bounds are not in its comparison
    assert "- rollout of `embed` (RayService): replica bounds only: KubeRay leaves the running cluster" in section
    assert '-      "workersPossible": 2\n+      "workersPossible": 3' in section  # embed can reach 3 workers now
    assert "- change `search-embed` (kubernetes:ray.io/v1:RayService)" in section
    assert "-      maxReplicas: 2\n+      maxReplicas: 3" in section


def test_a_base_rendered_before_the_capacity_report_still_diffs(tmp_path):
    resource = {"type": "kubernetes:core/v1:Namespace", "name": "ns", "inputs": {"kind": "Namespace"}}
    for side, written in (("base", [resource]), ("head", {"capacity": {"quotaGpus": 4}, "resources": [resource]})):
        (tmp_path / side / "team").mkdir(parents=True)
        (tmp_path / side / "team" / "resources.json").write_text(json.dumps(written))
    section, changed_ = diff.stack_section("team", tmp_path / "base", tmp_path / "head")
    assert changed_ and "0 to add, 0 to change, 0 to remove, capacity or cost changes" in section
    assert '+  "quotaGpus": 4' in section


def test_a_change_that_leaves_the_capacity_report_alone_does_not_say_it_changed(tmp_path):
    report = {"capacity": {"quotaGpus": 4}}
    for side, versioning in (("base", False), ("head", True)):
        resource = {"type": "gcp:storage/bucket:Bucket", "name": "b", "inputs": {"versioning": versioning}}
        (tmp_path / side / "team").mkdir(parents=True)
        (tmp_path / side / "team" / "resources.json").write_text(json.dumps({**report, "resources": [resource]}))
    section, changed_ = diff.stack_section("team", tmp_path / "base", tmp_path / "head")
    assert changed_ and "0 to add, 1 to change, 0 to remove</summary>" in section
