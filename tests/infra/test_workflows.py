"""The GitHub workflows: their triggers, jobs and least permissions, every action pinned by commit,
every stack file deployed, and actionlint and zizmor clean."""

import re
import subprocess

import pytest
import yaml

from tools.render import ROOT, stack_config, stack_names

WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONS = ROOT / ".github" / "actions"
PINNED = re.compile(r"uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$")


def workflow(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def _permissions(name: str) -> dict[str, dict]:
    return {job_name: job.get("permissions") for job_name, job in workflow(name)["jobs"].items()}


def test_triggers_and_jobs():
    assert set(workflow("ci.yml")["on"]) == {"pull_request", "push"}
    assert set(workflow("ci.yml")["jobs"]) == {"lint", "test"}
    assert set(workflow("render-diff.yml")["on"]) == {"pull_request"}
    assert workflow("render-diff-comment.yml")["on"]["workflow_run"]["workflows"] == ["Render diff"]
    assert set(workflow("preview.yml")["on"]) == {"pull_request"}
    assert workflow("deploy.yml")["on"] == {"push": {"branches": ["main"]}}
    assert list(workflow("deploy.yml")["jobs"]) == ["dev-platform", "dev-teams", "prod-platform", "prod-teams"]


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def test_least_permissions(name):
    assert workflow(name)["permissions"] == {}  # nothing by default; each job asks for what it needs
    allowed = {"contents": "read", "actions": "read", "id-token": "write", "pull-requests": "write"}
    for job, permissions in _permissions(name).items():
        assert permissions is not None, f"{name}: job {job} states no permissions"
        assert all(allowed.get(k) == v for k, v in permissions.items()), (name, job, permissions)


def test_only_the_jobs_that_need_them_get_cloud_or_comment_rights():
    writes = {
        (name, job, scope)
        for name in ("ci.yml", "render-diff.yml", "render-diff-comment.yml", "preview.yml", "deploy.yml")
        for job, permissions in _permissions(name).items()
        for scope, level in permissions.items()
        if level == "write"
    }
    assert writes == {
        ("render-diff-comment.yml", "comment", "pull-requests"),
        ("preview.yml", "preview", "id-token"),
        ("preview.yml", "preview", "pull-requests"),
        *{("deploy.yml", job, "id-token") for job in workflow("deploy.yml")["jobs"]},
    }


def test_every_action_is_pinned_by_commit_with_its_tag():
    for path in [*WORKFLOWS.glob("*.yml"), *ACTIONS.rglob("action.yml")]:
        for line in path.read_text().splitlines():
            if "uses:" in line and "./.github/actions/" not in line:
                assert PINNED.search(line.strip().removeprefix("- ")), f"{path.name}: {line.strip()}"


def _pulumi_steps(name: str) -> list[tuple[str, dict]]:
    return [
        (job_name, step["with"])
        for job_name, job in workflow(name)["jobs"].items()
        for step in job["steps"]
        if step.get("uses", "").startswith("pulumi/actions@")
    ]


def test_preview_comments_on_the_pull_request_with_the_policy_pack():
    [(job, options)] = _pulumi_steps("preview.yml")
    assert options["command"] == "preview" and options["stack-name"] == "${{ matrix.stack }}"
    assert options["comment-on-pr"] is True and options["edit-pr-comment"] is True
    assert options["policyPacks"] == "policies"
    assert (
        "vars.PULUMI_BACKEND_URL" in options["cloud-url"]
        and "vars.PULUMI_SECRETS_PROVIDER" in options["secrets-provider"]
    )
    matrix = workflow("preview.yml")["jobs"][job]["strategy"]["matrix"]["stack"]
    assert "needs.stacks.outputs.stacks" in matrix  # tools.changed decides


def test_google_credentials_come_from_workload_identity_only():
    setup = yaml.safe_load((ACTIONS / "pulumi-setup" / "action.yml").read_text())
    [auth] = [s for s in setup["runs"]["steps"] if s.get("uses", "").startswith("google-github-actions/auth@")]
    assert set(auth["with"]) == {"workload_identity_provider", "service_account"}
    text = "\n".join(p.read_text() for p in [*WORKFLOWS.glob("*.yml"), *ACTIONS.rglob("*.yml")])
    assert "credentials_json" not in text and "secrets." not in text


def test_every_stack_file_is_deployed_platforms_before_their_teams():
    steps = _pulumi_steps("deploy.yml")
    jobs = workflow("deploy.yml")["jobs"]
    deployed = {}
    for job, options in steps:
        stacks = jobs[job].get("strategy", {}).get("matrix", {}).get("stack") or [options["stack-name"]]
        for stack in stacks:
            deployed[stack] = job
    assert sorted(deployed) == stack_names()
    for stack, job in deployed.items():
        assert all(o["command"] == "up" and o["policyPacks"] == "policies" for _, o in steps)
        env = "prod" if "prod" in stack else "dev"
        assert jobs[job]["environment"] == env
        kind = stack_config(stack)[0]["rayplane:kind"]
        assert job.endswith("-platform" if kind == "platform" else "-teams"), (stack, job)


@pytest.mark.parametrize("command", [["actionlint"], ["zizmor", "--offline", "--quiet", ".github"]], ids=lambda c: c[0])
def test_the_workflow_linters_find_nothing(command):
    tool = ROOT / ".venv" / "bin" / command[0]
    done = subprocess.run([str(tool), *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
