"""The Kubernetes manifests and the image: the properties a deployment relies on.

Static checks only (PyYAML over `deploy/k8s`, text over `deploy/Dockerfile`); no
cluster and no image build needed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
EXAMPLE_SECRET = "secret.example.yaml"

SECRET_SETTINGS = {"SLUICE_SECRET_KEY", "SLUICE_ADMIN_TOKEN", "SLUICE_DATABASE_URL"}
NEEDED_SETTINGS = {
    "control-plane": {"SLUICE_DATABASE_URL", "SLUICE_ADMIN_TOKEN", "SLUICE_SECRET_KEY"},
    "data-plane": {"SLUICE_DATABASE_URL", "SLUICE_SECRET_KEY"},
    "migrate": {"SLUICE_DATABASE_URL"},
}
WORKLOAD_KINDS = {"Deployment", "Job"}

Doc = dict[str, Any]


def _load(path: Path) -> list[Doc]:
    with path.open() as f:
        docs = [doc for doc in yaml.safe_load_all(f) if doc is not None]
    for doc in docs:
        assert isinstance(doc, dict), f"{path.name}: a document is not a mapping"
    return docs


def _yaml_files() -> list[Path]:
    return sorted([*K8S.glob("*.yaml"), *K8S.glob("*.yml")])


ALL_DOCS: dict[str, list[Doc]] = {path.name: _load(path) for path in _yaml_files()}
KUSTOMIZATION: Doc = ALL_DOCS["kustomization.yaml"][0]
APPLIED: list[Doc] = [
    doc for name in KUSTOMIZATION.get("resources", []) for doc in ALL_DOCS.get(name, [])
]


def _of_kind(kind: str) -> list[Doc]:
    return [doc for doc in APPLIED if doc.get("kind") == kind]


def _named(kind: str, name: str) -> Doc:
    found = [doc for doc in _of_kind(kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name!r}, found {len(found)}"
    return found[0]


def _component(doc: Doc) -> str:
    return str(doc["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"])


def _workloads() -> list[Doc]:
    return [doc for doc in APPLIED if doc.get("kind") in WORKLOAD_KINDS]


def _deployment(component: str) -> Doc:
    found = [doc for doc in _of_kind("Deployment") if _component(doc) == component]
    assert len(found) == 1, f"expected one {component} Deployment, found {len(found)}"
    return found[0]


def _containers(workload: Doc) -> list[Doc]:
    pod = workload["spec"]["template"]["spec"]
    return [*pod.get("initContainers", []), *pod["containers"]]


def _env(container: Doc) -> dict[str, Doc]:
    return {var["name"]: var for var in container.get("env", [])}


def _argv(container: Doc) -> list[str]:
    return [*container.get("command", []), *container.get("args", [])]


def _ids(docs: list[Doc]) -> list[str]:
    return [f"{doc['kind']}/{doc['metadata']['name']}" for doc in docs]


# --- the folder and the kustomization -----------------------------------------------


def test_every_document_has_a_kind_and_a_name() -> None:
    assert ALL_DOCS, "no YAML under deploy/k8s"
    for name, docs in ALL_DOCS.items():
        assert docs, f"{name} is empty"
        for doc in docs:
            assert doc.get("apiVersion"), f"{name}: a document has no apiVersion"
            assert doc.get("kind"), f"{name}: a document has no kind"
            if doc["kind"] != "Kustomization":
                assert doc.get("metadata", {}).get("name"), f"{name}: {doc['kind']} has no name"


def test_kustomization_lists_every_manifest_but_the_example_secret() -> None:
    resources = KUSTOMIZATION.get("resources", [])
    assert len(resources) == len(set(resources)), "a resource is listed twice"
    expected = {name for name in ALL_DOCS if name not in ("kustomization.yaml", EXAMPLE_SECRET)}
    assert set(resources) == expected
    assert EXAMPLE_SECRET in ALL_DOCS


def test_the_example_secret_is_only_an_example() -> None:
    text = (K8S / EXAMPLE_SECRET).read_text()
    assert "example" in text.lower().split("apiversion")[0], "say it is an example, up front"
    assert _of_kind("Secret") == [], "no Secret may be applied by the kustomization"
    (secret,) = ALL_DOCS[EXAMPLE_SECRET]
    assert secret["kind"] == "Secret"


def test_everything_applied_lives_in_the_namespace() -> None:
    (namespace,) = _of_kind("Namespace")
    name = namespace["metadata"]["name"]
    assert KUSTOMIZATION.get("namespace") == name
    for doc in APPLIED:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace", name) == name, _ids([doc])


# --- workloads ----------------------------------------------------------------------


def test_the_expected_workloads_exist() -> None:
    components = sorted(_component(doc) for doc in _workloads())
    assert components == ["control-plane", "data-plane", "migrate"]
    assert _deployment("control-plane")["spec"]["replicas"] == 2


@pytest.mark.parametrize("doc", _workloads(), ids=_ids(_workloads()))
def test_workloads_carry_the_recommended_labels(doc: Doc) -> None:
    for labels in (doc["metadata"]["labels"], doc["spec"]["template"]["metadata"]["labels"]):
        assert labels.get("app.kubernetes.io/name") == "sluice"
        assert labels.get("app.kubernetes.io/component")
    if doc["kind"] == "Deployment":
        selector = doc["spec"]["selector"]["matchLabels"]
        pod_labels = doc["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= pod_labels.items()
        assert {"app.kubernetes.io/name", "app.kubernetes.io/component"} <= selector.keys()


@pytest.mark.parametrize("doc", _of_kind("Deployment"), ids=_ids(_of_kind("Deployment")))
def test_deployments_probe_health_and_readiness_on_the_container_port(doc: Doc) -> None:
    for container in _containers(doc):
        ports = container.get("ports", [])
        assert ports, f"{container['name']} declares no port"
        known = {p["containerPort"] for p in ports} | {p["name"] for p in ports if "name" in p}
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            assert probe in container, f"{container['name']} has no {probe}"
            get = container[probe]["httpGet"]
            assert get["path"] == path, f"{container['name']} {probe} checks {get['path']}"
            assert get["port"] in known, f"{container['name']} {probe} probes another port"
            assert container[probe].get("periodSeconds", 10) >= 2
        if "startupProbe" in container:
            assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
            assert container["startupProbe"]["httpGet"]["port"] in known


@pytest.mark.parametrize("component", ["control-plane", "data-plane"])
def test_servers_listen_on_all_interfaces_at_their_container_port(component: str) -> None:
    (container,) = _containers(_deployment(component))
    argv = _argv(container)
    assert argv[:2] == ["sluice", component]
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    port = int(argv[argv.index("--port") + 1]) if "--port" in argv else None
    assert port in {p["containerPort"] for p in container["ports"]}


def test_the_migrate_job_runs_sluice_migrate() -> None:
    (job,) = _of_kind("Job")
    (container,) = _containers(job)
    assert _argv(container) == ["sluice", "migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure")
    assert job["spec"].get("backoffLimit", 6) <= 6
    assert job["spec"].get("activeDeadlineSeconds"), "a stuck migration must not hang forever"


# --- secrets and settings -------------------------------------------------------


@pytest.mark.parametrize("doc", _workloads(), ids=_ids(_workloads()))
def test_secret_settings_come_from_a_secret_never_a_literal(doc: Doc) -> None:
    (example,) = ALL_DOCS[EXAMPLE_SECRET]
    example_keys = set(example.get("stringData", {})) | set(example.get("data", {}))
    for container in _containers(doc):
        assert "envFrom" not in container, "name each setting; never import a whole Secret"
        env = _env(container)
        for name in SECRET_SETTINGS & env.keys():
            var = env[name]
            assert "value" not in var, f"{name} is a literal in {container['name']}"
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            assert ref, f"{name} in {container['name']} is not from a secretKeyRef"
            assert ref["name"] == example["metadata"]["name"]
            assert ref["key"] in example_keys, f"{name}: key {ref['key']!r} not in the example"
            assert not ref.get("optional", False), f"{name} must not be optional"
        assert NEEDED_SETTINGS[_component(doc)] <= env.keys()


def test_no_secret_setting_is_a_literal_anywhere() -> None:
    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("name") in SECRET_SETTINGS:
                assert "value" not in node, f"{node['name']} has a literal value"
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(APPLIED)


def test_the_data_plane_never_gets_the_admin_token() -> None:
    dump = yaml.safe_dump(_deployment("data-plane"))
    assert "SLUICE_ADMIN_TOKEN" not in dump
    assert "admin-token" not in dump
    (job,) = _of_kind("Job")
    assert "SLUICE_ADMIN_TOKEN" not in yaml.safe_dump(job)


@pytest.mark.parametrize("doc", _workloads(), ids=_ids(_workloads()))
def test_service_links_are_off(doc: Doc) -> None:
    # A Service named sluice-data-plane would otherwise put
    # SLUICE_DATA_PLANE_PORT=tcp://10.0.0.1:8080 into every pod's environment,
    # and Settings.from_env() would refuse it as a port number.
    assert doc["spec"]["template"]["spec"].get("enableServiceLinks") is False


# --- hardening ---------------------------------------------------------------------


@pytest.mark.parametrize("doc", _workloads(), ids=_ids(_workloads()))
def test_containers_run_unprivileged_on_a_read_only_root(doc: Doc) -> None:
    pod = doc["spec"]["template"]["spec"]
    pod_security = pod.get("securityContext", {})
    assert pod.get("automountServiceAccountToken") is False
    assert pod.get("hostNetwork", False) is False
    for container in _containers(doc):
        security = container.get("securityContext", {})
        non_root = security.get("runAsNonRoot", pod_security.get("runAsNonRoot"))
        assert non_root is True, f"{container['name']} may run as root"
        assert security.get("runAsUser", pod_security.get("runAsUser", 1)) != 0
        assert security.get("readOnlyRootFilesystem") is True
        assert security.get("allowPrivilegeEscalation") is False
        assert security.get("privileged", False) is False
        assert "ALL" in security.get("capabilities", {}).get("drop", [])
        assert not security.get("capabilities", {}).get("add")
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        assert "/tmp" in mounts, f"{container['name']} needs a writable /tmp"
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        assert "emptyDir" in volumes[mounts["/tmp"]]


def test_the_data_plane_has_its_cache_directory() -> None:
    deployment = _deployment("data-plane")
    (container,) = _containers(deployment)
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes[mounts["/var/cache/sluice"]]


@pytest.mark.parametrize("doc", _workloads(), ids=_ids(_workloads()))
def test_every_container_has_requests_and_limits(doc: Doc) -> None:
    for container in _containers(doc):
        resources = container.get("resources", {})
        for section in ("requests", "limits"):
            assert {"cpu", "memory"} <= resources.get(section, {}).keys(), (
                f"{container['name']} lacks {section}"
            )


def test_the_data_plane_requests_one_core_per_worker() -> None:
    (container,) = _containers(_deployment("data-plane"))
    assert str(container["resources"]["requests"]["cpu"]) in ("1", "1000m")
    argv = _argv(container)
    assert "--workers" not in argv, "one uvicorn process per pod; scale with replicas"


# --- the data plane: shutdown, scaling, availability ---------------------------


def test_the_data_plane_outlives_its_graceful_shutdown() -> None:
    pod = _deployment("data-plane")["spec"]["template"]["spec"]
    grace = pod["terminationGracePeriodSeconds"]
    assert grace > 30, "in-flight streams get up to 30 s after SIGTERM"
    (container,) = _containers(_deployment("data-plane"))
    pre_stop = container.get("lifecycle", {}).get("preStop", {})
    sleep = int(pre_stop["exec"]["command"][-1]) if "exec" in pre_stop else 0
    assert 0 < sleep <= 10
    assert grace >= sleep + 30, "the preStop sleep counts against the grace period"


def test_the_hpa_scales_the_data_plane_deployment() -> None:
    (hpa,) = _of_kind("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert target["kind"] == "Deployment"
    assert target["apiVersion"] == "apps/v1"
    deployment = _named("Deployment", target["name"])
    assert deployment is _deployment("data-plane")
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    spec = hpa["spec"]
    assert spec["minReplicas"] >= 2
    assert spec["maxReplicas"] > spec["minReplicas"]
    (metric,) = spec["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert 40 <= metric["resource"]["target"]["averageUtilization"] <= 80
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 60


def test_the_data_plane_spreads_over_nodes() -> None:
    deployment = _deployment("data-plane")
    selector = deployment["spec"]["selector"]["matchLabels"]
    constraints = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    by_key = {c["topologyKey"]: c for c in constraints}
    assert "kubernetes.io/hostname" in by_key
    for constraint in constraints:
        assert constraint["labelSelector"]["matchLabels"] == selector


def test_the_disruption_budget_covers_the_data_plane() -> None:
    deployment = _deployment("data-plane")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    budgets = [
        pdb
        for pdb in _of_kind("PodDisruptionBudget")
        if pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    ]
    assert len(budgets) == 1
    spec = budgets[0]["spec"]
    assert "maxUnavailable" in spec or "minAvailable" in spec


@pytest.mark.parametrize("service", _of_kind("Service"), ids=_ids(_of_kind("Service")))
def test_services_select_a_deployment_and_a_named_port(service: Doc) -> None:
    selector = service["spec"]["selector"]
    matches = [
        d
        for d in _of_kind("Deployment")
        if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
    ]
    assert len(matches) == 1, f"{service['metadata']['name']} selects {len(matches)} Deployments"
    (container,) = _containers(matches[0])
    names = {p["name"] for p in container["ports"]}
    numbers = {p["containerPort"] for p in container["ports"]}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in names | numbers


# --- the image -------------------------------------------------------------------


def _final_stage() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile's last stage, continuations joined."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    instructions = [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


def _command_form(arguments: str) -> list[str]:
    arguments = arguments.strip()
    if arguments.startswith("["):
        parsed = json.loads(arguments)
        assert all(isinstance(part, str) for part in parsed)
        return list(parsed)
    return ["/bin/sh", "-c", arguments]


def test_the_image_runs_sluice() -> None:
    stage = _final_stage()
    entrypoint = [_command_form(a) for op, a in stage if op == "ENTRYPOINT"]
    cmd = [_command_form(a) for op, a in stage if op == "CMD"]
    assert cmd, "the runtime stage has no CMD"
    argv = [*(entrypoint[-1] if entrypoint else []), *cmd[-1]]
    assert argv[0] == "sluice", f"the image runs {argv}, not sluice (exec form, PID 1)"
    assert argv[1:3] == ["data-plane", "--host"]
    assert argv[3] == "0.0.0.0"


def test_the_image_runs_as_a_non_root_user() -> None:
    stage = _final_stage()
    users = [a.split(":")[0].strip() for op, a in stage if op == "USER"]
    assert users, "the runtime stage never leaves root"
    assert users[-1] not in ("root", "0")


def test_the_image_installs_from_the_lock_with_hashes() -> None:
    text = " ".join(DOCKERFILE.read_text().split())
    assert "pip install --require-hashes -r requirements.lock" in text
    assert "pip install --no-deps ." in text
    assert "python:3.11-slim" in text


def test_the_build_context_leaves_local_state_out() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".sluice", ".git", "tests"} <= ignored
    assert {"requirements.lock", "pyproject.toml", "README.md"}.isdisjoint(ignored)
