"""The GitHub workflows: triggers, least permissions, every action pinned by commit; previews and
deploys of the changed stacks only, in their GitHub environments, refreshed, one update per stack at
a time, prod previewed before its gate; failures commented; one required check; actionlint and
zizmor clean."""

import re
import subprocess

import pytest
import yaml

from components import ci
from tools import changed
from tools.render import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONS = ROOT / ".github" / "actions"
PINNED = re.compile(r"uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$")
CALL = "./.github/workflows/pulumi.yml"


def workflow(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def jobs(name: str) -> dict[str, dict]:
    return workflow(name)["jobs"]


def test_triggers_and_jobs():
    assert set(workflow("ci.yml")["on"]) == {"pull_request", "push"}
    assert list(jobs("ci.yml")) == ["lint", "test", "stacks", "preview", "preview-comments", ci.REQUIRED_CHECK]
    assert set(workflow("render-diff.yml")["on"]) == {"pull_request"}
    assert workflow("render-diff-comment.yml")["on"]["workflow_run"]["workflows"] == ["Render diff"]
    # deploys run from the branch the bootstrap stack's rules and identity provider name
    branch = changed.bootstrap().github.branch
    assert workflow("deploy.yml")["on"] == {"push": {"branches": [branch]}}
    assert workflow("ci.yml")["on"]["push"] == {"branches": [branch]}
    assert set(workflow("drift.yml")["on"]) == {"schedule", "workflow_dispatch"}
    assert set(workflow("pulumi.yml")["on"]) == {"workflow_call"}


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def test_least_permissions(name):
    assert workflow(name)["permissions"] == {}  # nothing by default; each job asks for what it needs
    allowed = {"contents": "read", "actions": "read", "id-token": "write", "pull-requests": "write", "issues": "write"}
    for job_name, job in jobs(name).items():
        assert job.get("permissions") is not None, f"{name}: job {job_name} states no permissions"
        assert all(allowed.get(k) == v for k, v in job["permissions"].items()), (name, job_name, job["permissions"])


def test_cloud_credentials_and_write_rights_never_meet():
    """Only the Pulumi job gets cloud credentials (and the jobs that call it grant them); the jobs
    that write to the repository (comments, issues) run nothing of a pull request's code."""
    writes = {
        (name.name, job_name, scope)
        for name in WORKFLOWS.glob("*.yml")
        for job_name, job in jobs(name.name).items()
        for scope, level in job["permissions"].items()
        if level == "write"
    }
    callers = {(n, j) for n in ("ci.yml", "deploy.yml", "drift.yml") for j, job in jobs(n).items() if job.get("uses")}
    assert writes == {
        ("pulumi.yml", "stack", "id-token"),
        *{(n, j, "id-token") for n, j in callers},
        ("ci.yml", "preview-comments", "pull-requests"),
        ("render-diff-comment.yml", "comment", "pull-requests"),
        ("drift.yml", "report", "issues"),
    }
    for name, job_name, scope in writes:
        if scope != "id-token":
            steps = jobs(name)[job_name]["steps"]
            assert not any(s.get("uses", "").startswith(("actions/checkout", "./")) for s in steps), (name, job_name)


def test_every_action_is_pinned_by_commit_with_its_tag():
    for path in [*WORKFLOWS.glob("*.yml"), *ACTIONS.rglob("action.yml")]:
        for line in path.read_text().splitlines():
            if "uses:" in line and "uses: ./.github/" not in line:
                assert PINNED.search(line.strip().removeprefix("- ")), f"{path.name}: {line.strip()}"


def _pulumi_step() -> tuple[dict, dict]:
    job = jobs("pulumi.yml")["stack"]
    [step] = [s for s in job["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
    return job, step["with"]


def test_one_pulumi_job_previews_or_deploys_a_stack_in_its_environment():
    job, options = _pulumi_step()
    assert job["strategy"]["matrix"] == {"include": "${{ fromJSON(inputs.stacks) }}"}
    assert options["command"] == "${{ inputs.command }}" and options["stack-name"] == "${{ matrix.stack }}"
    assert options["policyPacks"] == "policies"  # mandatory policies fail previews and deploys alike
    assert options["cloud-url"] == f"${{{{ vars.{ci.BACKEND_VARIABLE} }}}}"
    assert "secrets-provider" not in options  # the stack file names it (the action would ignore it)
    # up: the deploy environment (main only, reviewers); anything else: the read-only one
    assert (
        job["environment"]
        == "${{ inputs.command == 'up' && matrix.environment || format('{0}-preview', matrix.environment) }}"
    )
    [setup] = [s for s in job["steps"] if s.get("uses") == "./.github/actions/pulumi-setup"]
    assert setup["with"]["service-account"] == f"${{{{ vars.{ci.ACCOUNT_VARIABLE} }}}}"  # the environment's
    assert setup["with"]["workload-identity-provider"] == f"${{{{ vars.{ci.PROVIDER_VARIABLE} }}}}"


def test_every_run_refreshes_first_and_updates_of_a_stack_queue():
    job, options = _pulumi_step()
    inputs = workflow("pulumi.yml")["on"]["workflow_call"]["inputs"]
    assert options["refresh"] == "${{ inputs.refresh }}" and inputs["refresh"]["default"] is True
    for name in ("ci.yml", "deploy.yml", "drift.yml"):
        assert all("refresh" not in j.get("with", {}) for j in jobs(name).values())
    group = job["concurrency"]["group"]
    assert "format('pulumi-up-{0}', matrix.stack)" in group and job["concurrency"]["cancel-in-progress"] is False
    assert "github.run_id" in group  # previews get a group of their own: they never queue behind each other
    assert "concurrency" not in workflow("deploy.yml")  # prod waiting for approval holds up no other stack


def _after(workflow_jobs: dict, name: str) -> set[str]:
    """Every job `name` waits for, directly or not."""
    needs = workflow_jobs[name].get("needs", [])
    direct = {needs} if isinstance(needs, str) else set(needs)
    return direct.union(*(_after(workflow_jobs, n) for n in direct))


def test_deploys_run_the_changed_stacks_environment_by_environment_prod_previewed_before_its_gate():
    deploy = jobs("deploy.yml")
    # changes since the last deploy run that succeeded: a failed or cancelled one is retried
    [step] = [s for s in deploy["stacks"]["steps"] if s.get("id") == "changed"]
    branch = changed.bootstrap().github.branch
    assert (
        f'gh run list --repo "$GITHUB_REPOSITORY" --workflow deploy.yml --branch {branch} --status success'
        in step["run"]
    )
    assert '-m tools.changed ${base:+--base "$base"} --github-output' in step["run"]
    assert deploy["stacks"]["permissions"] == {"actions": "read", "contents": "read"}
    expected, previous = [], []
    for env in changed.bootstrap().environments:
        gated = bool(env.reviewers.users or env.reviewers.teams)
        # with reviewers, a fresh preview of what each up will deploy, in the run's summary: every
        # stack before the platforms' up, then the teams whose platform deployed in the same run
        steps = [("preview", "gate"), ("up", "platforms"), ("preview", "team-gate"), ("up", "teams")]
        for command, matrix in steps if gated else [s for s in steps if s[0] == "up"]:
            name = {"gate": f"{env.name}-preview", "team-gate": f"{env.name}-teams-preview"}.get(
                matrix, f"{env.name}-{matrix}"
            )
            job = deploy[name]
            assert job["uses"] == CALL
            assert job["with"] == {"command": command, "stacks": f"${{{{ needs.stacks.outputs.{env.name}-{matrix} }}}}"}
            assert set(previous) <= _after(deploy, name), (env.name, name)  # after what came before
            # and only when each of them succeeded or had nothing to do (a cancelled one stops it)
            if previous:
                assert "!cancelled()" in job["if"] and "failure" not in job["if"], job["if"]
            expected.append(name)
            previous.append(name)
    assert list(deploy) == ["stacks", *expected]
    # every output the jobs read is one tools.changed writes
    outputs = deploy["stacks"]["outputs"]
    assert set(outputs) <= set(changed.matrices(changed.touched(changed.EVERYTHING)))
    assert all(value == f"${{{{ steps.changed.outputs.{key} }}}}" for key, value in outputs.items())


def test_every_ci_stack_is_in_one_deploy_list():
    everything = changed.matrices(changed.touched(changed.EVERYTHING))
    deployed = [
        e["stack"] for key, entries in everything.items() if key.endswith(("-platforms", "-teams")) for e in entries
    ]
    assert sorted(deployed) == sorted(changed.environments())


def test_pull_requests_preview_the_changed_stacks_and_comment_every_outcome():
    ci_jobs = jobs("ci.yml")
    assert ci_jobs["preview"]["uses"] == CALL
    assert ci_jobs["preview"]["with"] == {"command": "preview", "stacks": "${{ needs.stacks.outputs.stacks }}"}
    [step] = [s for s in ci_jobs["stacks"]["steps"] if s.get("id") == "changed"]
    assert '-m tools.changed --base "$BASE_SHA" --github-output' in step["run"]
    # each stack's outcome leaves its job even when it failed, and one comment per stack says it
    job, _ = _pulumi_step()
    upload = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert [s["if"] for s in upload] == ["always()"]
    comments = ci_jobs["preview-comments"]
    assert comments["if"].startswith("${{ !cancelled()") and comments["needs"] == ["stacks", "preview"]
    script = comments["steps"][-1]["with"]["script"]
    assert "rayplane-preview:${stack}" in script and "updateComment" in script and "failure" in script


def test_one_required_check_stands_for_every_job():
    required = jobs("ci.yml")[ci.REQUIRED_CHECK]
    assert required["if"] == "always()"
    assert set(required["needs"]) == set(jobs("ci.yml")) - {ci.REQUIRED_CHECK}
    assert '[ "$result" = success ] || [ "$result" = skipped ] || exit 1' in required["steps"][0]["run"]


def test_a_failed_head_render_still_gets_its_comment():
    steps = jobs("render-diff.yml")["render-diff"]["steps"]
    [upload] = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["if"].startswith("always()")
    run = next(s["run"] for s in steps if "tools.diff" in s.get("run", ""))
    assert run.index("pr-number") < run.index("tools.diff")  # written before the diff can fail
    assert "failure" in jobs("render-diff-comment.yml")["comment"]["if"]


def test_the_drift_check_previews_everything_expecting_no_change_and_opens_an_issue():
    drift = jobs("drift.yml")
    assert drift["drift"]["with"] == {
        "command": "preview",
        "stacks": "${{ needs.stacks.outputs.stacks }}",
        "expect-no-changes": True,
    }
    assert "--base" not in drift["stacks"]["steps"][-1]["run"]  # every stack
    assert "contains(needs.*.result, 'failure')" in drift["report"]["if"]
    assert "issues.create" in drift["report"]["steps"][0]["with"]["script"]


def test_dependabot_keeps_every_pin_current():
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    updates = {u["package-ecosystem"]: u["directories"] for u in config["updates"]}
    assert set(updates["github-actions"]) == {
        "/",
        *(f"/{p.parent.relative_to(ROOT)}" for p in ACTIONS.rglob("action.yml")),
    }
    assert set(updates["pip"]) == {"/", "/policies"}


def test_google_credentials_come_from_workload_identity_only():
    setup = yaml.safe_load((ACTIONS / "pulumi-setup" / "action.yml").read_text())
    steps = setup["runs"]["steps"]
    [auth] = [s for s in steps if s.get("uses", "").startswith("google-github-actions/auth@")]
    assert set(auth["with"]) == {"workload_identity_provider", "service_account"}
    # the stack file is checked before any credential is minted
    check = next(i for i, s in enumerate(steps) if "tools.bootstrap check" in s.get("run", ""))
    assert check < steps.index(auth)
    text = "\n".join(p.read_text() for p in [*WORKFLOWS.glob("*.yml"), *ACTIONS.rglob("*.yml")])
    assert "credentials_json" not in text and "secrets." not in text


@pytest.mark.parametrize("command", [["actionlint"], ["zizmor", "--offline", "--quiet", ".github"]], ids=lambda c: c[0])
def test_the_workflow_linters_find_nothing(command):
    tool = ROOT / ".venv" / "bin" / command[0]
    done = subprocess.run([str(tool), *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
