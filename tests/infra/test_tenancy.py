"""Teams that cannot hurt each other: payload archives owned once, a team's pods unreachable from
other teams, token auth on every Ray cluster, and bad stack files that stop with one line."""

import ipaddress
import re
import subprocess
import sys

import pytest

from tests.infra.conftest import besides_standing, render_values, rendered, stack_values
from tools import render as render_tool

RAY_KINDS = ("RayService", "RayJob")


# -- payload archives


def test_two_teams_with_the_same_code_own_different_objects_and_read_only_their_own():
    search, assistant = rendered("search-dev"), rendered("assistant-dev")
    objects = {
        team: r["inputs"]["name"]
        for team, stack in (("search", search), ("assistant", assistant))
        for r in stack.of_type("gcp:storage/bucketObject:BucketObject")
    }
    [digest] = {name.rsplit("/", 1)[-1] for name in objects.values()}  # the same code: the same bytes
    assert objects == {team: f"payloads/{team}/{digest}" for team in ("search", "assistant")}
    for team, stack in (("search", search), ("assistant", assistant)):
        [grant] = [
            r["inputs"]
            for r in stack.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")
            if r["inputs"]["bucket"] == "rayplane-dev-rayplane-dev-workloads"
        ]
        assert grant["role"] == "roles/storage.objectViewer"
        assert grant["condition"]["expression"] == (
            f'resource.name.startsWith("projects/_/buckets/rayplane-dev-rayplane-dev-workloads/objects/payloads/{team}/")'
        )
        assert stack.outputs["payloadUri"].startswith(f"gs://rayplane-dev-rayplane-dev-workloads/payloads/{team}/")


# -- network isolation: a small evaluator of Kubernetes NetworkPolicy ingress rules


def _selects(selector: dict, labels: dict) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        present = key in labels
        if (operator == "Exists" and not present) or (operator == "DoesNotExist" and present):
            return False
        if operator == "In" and labels.get(key) not in expression["values"]:
            return False
    return True


def _peer(peer: dict, source: dict, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        return "ip" in source and ipaddress.ip_address(source["ip"]) in ipaddress.ip_network(peer["ipBlock"]["cidr"])
    if "ip" in source:
        return False
    namespace_ok = (
        _selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": source["namespace"]})
        if "namespaceSelector" in peer
        else source["namespace"] == policy_namespace
    )
    return namespace_ok and _selects(peer.get("podSelector", {}), source.get("labels", {}))


def allowed(policies: list[dict], namespace: str, labels: dict, port: int, source: dict) -> bool:
    """Whether the policies of `namespace` admit a TCP connection from `source` to a pod on `port`."""
    isolating = [
        p
        for p in policies
        if p["metadata"]["namespace"] == namespace
        and "Ingress" in p["spec"]["policyTypes"]
        and _selects(p["spec"]["podSelector"], labels)
    ]
    if not isolating:
        return True
    return any(
        (not rule.get("ports") or any(p["port"] == port for p in rule["ports"]))
        and (not rule.get("from") or any(_peer(peer, source, namespace) for peer in rule["from"]))
        for policy in isolating
        for rule in policy["spec"].get("ingress", [])
    )


HEAD = {"ray.io/node-type": "head", "ray.io/cluster": "chat-abc"}
WORKER = {"ray.io/node-type": "worker", "ray.io/cluster": "chat-abc"}
# Every port a Ray pod listens on: GCS, client, dashboard, Serve, metrics, autoscaler and dashboard
# metrics, the dashboard agent, a worker process port (10002-19999), an object manager port (random).
HEAD_PORTS = (6379, 10001, 8265, 8000, 8080, 44217, 44227, 52365, 12345, 40123)
WORKER_PORTS = (8000, 8080, 52365, 12345, 40123)


def expected(source: str, pod: str, port: int, stack: str) -> bool:
    """Who may reach which port of a team's Ray pods (docs/tenancy.md's list)."""
    return {
        "same-namespace": True,
        # KubeRay v1.7.0 calls the head's dashboard through its Service (utils/util.go:1036-1052) and, on
        # every RayService reconcile, GET http://<head pod IP>:<port named serve, else 8000>/-/healthz
        # (rayservice_controller.go:2091-2111, utils/util.go:1114, utils/constant.go:110,337): a failed
        # call leaves the head out of the serve Service (ray.io/serve=false) after a 2 s timeout.
        "kuberay-operator": pod == "head" and port in (8265, 8000),
        "managed-prometheus": port in (8080, 44217, 44227),
        "serve-client": port == 8000 and stack == "search-dev",  # search-dev lets assistant's pods call its apps
        "gateway-proxy": port == 8000 and stack == "search-prod",  # prod has the Gateway API
        "other-team": False,
        "default-namespace": False,
        "internet": False,
    }[source]


SOURCES = {
    "same-namespace": None,  # the team's own namespace
    "kuberay-operator": {"namespace": "kuberay-system", "labels": {"app.kubernetes.io/name": "kuberay-operator"}},
    "managed-prometheus": {"namespace": "gmp-system", "labels": {"app": "managed-prometheus-collector"}},
    "serve-client": {"namespace": "assistant", "labels": {"ray.io/node-type": "worker"}},  # search-dev's client
    "gateway-proxy": {"ip": "10.24.0.7"},
    "other-team": {"namespace": "fraud", "labels": {"ray.io/node-type": "head"}},
    "default-namespace": {"namespace": "default", "labels": {}},
    "internet": {"ip": "203.0.113.9"},
}


@pytest.mark.parametrize("stack", ["search-dev", "search-prod", "assistant-dev"])
def test_every_port_of_every_ray_pod_is_reachable_only_as_intended(stack):
    team = rendered(stack)
    namespace = team.outputs["namespace"]
    policies = [m for m in team.manifests() if m["kind"] == "NetworkPolicy"]
    assert {p["metadata"]["name"] for p in policies} >= {"default-deny-ingress", "allow-same-namespace"}
    assert {m["metadata"]["namespace"] for m in team.manifests() if m["kind"] in RAY_KINDS} == {namespace}
    for source_name, source in SOURCES.items():
        if source_name == "serve-client" and namespace == "assistant":
            continue  # for assistant-dev that source is the team itself
        source = source or {"namespace": namespace, "labels": {"ray.io/node-type": "worker"}}
        for pod, labels, ports in (("head", HEAD, HEAD_PORTS), ("worker", WORKER, WORKER_PORTS)):
            for port in ports:
                want = expected(source_name, pod, port, stack)
                assert allowed(policies, namespace, labels, port, source) is want, (source_name, pod, port)


def test_the_evaluator_sees_an_open_namespace():
    assert allowed([], "search", HEAD, 8265, SOURCES["other-team"])  # no policy: everything is let in


# -- Ray token auth


def test_every_ray_cluster_requires_a_token():
    for stack in ("search-dev", "search-prod", "assistant-dev"):
        for manifest in rendered(stack).manifests():
            if manifest["kind"] in RAY_KINDS:
                cluster = manifest["spec"].get("rayClusterConfig") or manifest["spec"]["rayClusterSpec"]
                # KubeRay keeps the token in a Secret named after the RayCluster, in the team's namespace.
                assert cluster["authOptions"] == {"mode": "token"}, manifest["metadata"]["name"]


# -- a control plane open to the world


def test_a_world_open_control_plane_needs_the_opt_in_and_warns():
    values = stack_values("dev")
    plane = values["rayplane:cluster"]["controlPlane"]
    plane["authorizedNetworks"] = [{"name": "anyone", "cidr": "0.0.0.0/0"}]
    plane["openToInternet"] = True
    result = render_values("dev", values)
    cluster = result.one("gcp:container/cluster:Cluster")["inputs"]
    assert cluster["masterAuthorizedNetworksConfig"]["cidrBlocks"] == [
        {"cidrBlock": "0.0.0.0/0", "displayName": "anyone"}
    ]
    [warning] = besides_standing(result.warnings)
    assert warning.startswith("cluster.controlPlane.openToInternet: the Kubernetes API endpoint accepts connections")


# -- stack files that are not stack files: exit 2 and one line, never a traceback

BROKEN_FILES = {
    "not-yaml": ("config: [unclosed\n", "stacks/Pulumi.broken.yaml: not YAML at line 2: "),
    "empty": ("", "stacks/Pulumi.broken.yaml: no `config:` section (it holds the stack's rayplane:* keys)"),
    "config-empty": (
        "config:\n",
        "stacks/Pulumi.broken.yaml: `config:` is empty (it holds the stack's rayplane:* keys)",
    ),
    "no-config": (
        "encryptionsalt: v1:abc\n",
        "stacks/Pulumi.broken.yaml: no `config:` section (it holds the stack's rayplane:* keys)",
    ),
    "prefix-empty": (
        (render_tool.STACKS / "Pulumi.dev.yaml")
        .read_text()
        .replace("rayplane:prefix: rayplane-dev", 'rayplane:prefix: ""'),
        "prefix: '' is not a valid name",
    ),
    "no-platform-file": (
        (render_tool.STACKS / "Pulumi.search-dev.yaml")
        .read_text()
        .replace("organization/rayplane/dev", "organization/rayplane/gone"),
        "platformStack: no stack file stacks/Pulumi.gone.yaml to render organization/rayplane/gone from",
    ),
}


@pytest.mark.parametrize("content", BROKEN_FILES, ids=str)
def test_a_broken_stack_file_stops_the_render_with_one_line(content, tmp_path, monkeypatch, capsys):
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    for platform in ("dev",):
        (stacks / f"Pulumi.{platform}.yaml").write_text((render_tool.STACKS / f"Pulumi.{platform}.yaml").read_text())
    text, message = BROKEN_FILES[content]
    (stacks / "Pulumi.broken.yaml").write_text(text)
    monkeypatch.setattr(render_tool, "STACKS", stacks)
    assert render_tool.main(["broken", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_the_render_command_exits_2_without_a_traceback_as_a_user_runs_it(tmp_path):
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.broken.yaml").write_text("config: [unclosed\n")
    script = (
        "import sys, pathlib; from tools import render; render.STACKS = pathlib.Path(sys.argv[1]);"
        " sys.exit(render.main(['broken', '--out', sys.argv[2]]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(stacks), str(tmp_path / "out")],
        cwd=render_tool.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert re.search(r"stacks/Pulumi\.broken\.yaml: not YAML at line \d+", done.stderr)


# -- what a team's group may do in the cluster


def _can(rules: list[dict], verb: str, resource: str, group: str = "") -> bool:
    """Whether RBAC rules grant `verb` on `resource` (e.g. "pods/log") of API group `group`."""
    return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in rules)


def test_a_team_group_manages_its_ray_objects_in_its_namespace_and_nothing_else():
    """KubeRay's chart roles (helm-chart/kuberay-operator/templates/ray_*_role.yaml@v1.7.0) carry no
    aggregate-to-edit label, and Kueue's (charts/kueue/templates/rbac/*_viewer_role.yaml@v0.19.2)
    aggregate only read rights on ray.io into `edit`: a group bound to `edit` cannot manage, nor even
    list with KubeRay's roles alone, its RayServices. The team's own Role grants what it needs."""
    team = rendered("search-dev")
    namespace = team.outputs["namespace"]
    rbac = [m for m in team.manifests() if m["apiVersion"].startswith("rbac.authorization.k8s.io/")]
    assert {(m["kind"], m["metadata"]["namespace"]) for m in rbac} == {("Role", namespace), ("RoleBinding", namespace)}
    [role] = [m for m in rbac if m["kind"] == "Role"]
    [binding] = [m for m in rbac if m["kind"] == "RoleBinding"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    rules = role["rules"]
    for verb, resource, group in [
        *(
            (v, r, "ray.io")
            for v in ("list", "get", "create", "patch", "delete")
            for r in ("rayservices", "rayjobs", "rayclusters")
        ),
        ("get", "rayservices/status", "ray.io"),
        ("list", "pods", ""),
        ("get", "pods/log", ""),
        ("create", "pods/portforward", ""),  # the dashboard
        ("get", "secrets", ""),  # the Ray cluster's auth token, by name
        ("get", "jobs", "batch"),  # a RayJob's submitter, with the driver's logs
        ("list", "workloads", "kueue.x-k8s.io"),  # why a queued job waits
    ]:
        assert _can(rules, verb, resource, group), (verb, resource, group)
    for verb, resource, group in [
        ("list", "secrets", ""),  # would read every secret of the namespace
        ("create", "pods", ""),
        ("create", "pods/exec", ""),
        ("create", "rolebindings", "rbac.authorization.k8s.io"),
        ("update", "localqueues", "kueue.x-k8s.io"),  # the platform's queue wiring
        ("delete", "resourcequotas", ""),
        ("update", "networkpolicies", "networking.k8s.io"),
    ]:
        assert not _can(rules, verb, resource, group), (verb, resource, group)
    assert all("*" not in r["verbs"] + r["resources"] + r["apiGroups"] for r in rules)
