"""The Kubernetes manifests: the properties a deployment relies on, in every overlay.

Static checks over what each overlay of `deploy/k8s` renders to (`tests/support/
kustomize.py`); no cluster needed. Autoscaling, shutdown and the schemas:
`tests/test_k8s_autoscaling.py`.
"""

from __future__ import annotations

import pytest
import yaml

from tests.support.k8s import (
    K8S,
    OVERLAYS,
    Doc,
    argv,
    component,
    containers,
    deployment,
    env,
    ids,
    of_kind,
    rendered,
    workloads,
)

BASE = K8S / "base"
EXAMPLE_SECRET = "secret.example.yaml"

SECRET_SETTINGS = {"SLUICE_SECRET_KEY", "SLUICE_ADMIN_TOKEN", "SLUICE_DATABASE_URL"}
NEEDED_SETTINGS = {
    "control-plane": {"SLUICE_DATABASE_URL", "SLUICE_ADMIN_TOKEN", "SLUICE_SECRET_KEY"},
    "data-plane": {"SLUICE_DATABASE_URL", "SLUICE_SECRET_KEY"},
    "migrate": {"SLUICE_DATABASE_URL"},
}


def _load_all(path: str) -> list[Doc]:
    with (BASE / path).open() as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def _each(kinds: set[str]) -> list[tuple[str, Doc]]:
    return [(o, doc) for o in OVERLAYS for doc in rendered(o) if doc["kind"] in kinds]


def _each_ids(pairs: list[tuple[str, Doc]]) -> list[str]:
    return [f"{o}:{name}" for o, doc in pairs for name in ids([doc])]


WORKLOADS = _each({"Deployment", "Job"})
DEPLOYMENTS = _each({"Deployment"})
SERVICES = _each({"Service"})
EXAMPLE: Doc = _load_all(EXAMPLE_SECRET)[0]


# --- the folders and the kustomizations -----------------------------------------------


def test_the_base_lists_every_manifest_but_the_example_secret() -> None:
    (kustomization,) = _load_all("kustomization.yaml")
    resources = kustomization["resources"]
    assert len(resources) == len(set(resources)), "a resource is listed twice"
    files = {p.name for p in BASE.glob("*.y*ml")} - {"kustomization.yaml", EXAMPLE_SECRET}
    assert set(resources) == files
    assert "images" not in kustomization, "each overlay says which image it runs"


def test_every_overlay_builds_on_the_base_and_sets_the_image() -> None:
    found = sorted(p.name for p in (K8S / "overlays").iterdir())
    assert found == sorted(OVERLAYS)
    for overlay in OVERLAYS:
        (kustomization,) = yaml.safe_load_all(
            (K8S / "overlays" / overlay / "kustomization.yaml").read_text()
        )
        assert "../../base" in kustomization["resources"]
        for workload in workloads(rendered(overlay)):
            for container in containers(workload):
                assert container["image"].startswith("registry.example.com/sluice:"), overlay


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_has_a_kind_and_a_name(overlay: str) -> None:
    for doc in rendered(overlay):
        assert doc.get("apiVersion"), doc
        assert doc.get("kind"), doc
        assert doc.get("metadata", {}).get("name"), f"{doc['kind']} has no name"


def test_the_example_secret_is_only_an_example() -> None:
    text = (BASE / EXAMPLE_SECRET).read_text()
    assert "example" in text.lower().split("apiversion")[0], "say it is an example, up front"
    assert EXAMPLE["kind"] == "Secret"
    for overlay in OVERLAYS:
        assert of_kind(rendered(overlay), "Secret") == [], "no overlay may apply a Secret"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_applied_lives_in_the_namespace(overlay: str) -> None:
    docs = rendered(overlay)
    (namespace,) = of_kind(docs, "Namespace")
    name = namespace["metadata"]["name"]
    assert name == "sluice"
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == name, ids([doc])


# --- workloads ----------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_expected_workloads_exist(overlay: str) -> None:
    docs = rendered(overlay)
    assert sorted(component(doc) for doc in workloads(docs)) == [
        "control-plane",
        "data-plane",
        "migrate",
    ]
    replicas = deployment(docs, "control-plane")["spec"]["replicas"]
    assert replicas == (1 if overlay == "dev" else 2)


@pytest.mark.parametrize(("overlay", "doc"), WORKLOADS, ids=_each_ids(WORKLOADS))
def test_workloads_carry_the_recommended_labels(overlay: str, doc: Doc) -> None:
    for labels in (doc["metadata"]["labels"], doc["spec"]["template"]["metadata"]["labels"]):
        assert labels.get("app.kubernetes.io/name") == "sluice"
        assert labels.get("app.kubernetes.io/component")
    if doc["kind"] == "Deployment":
        selector = doc["spec"]["selector"]["matchLabels"]
        pod_labels = doc["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= pod_labels.items()
        assert {"app.kubernetes.io/name", "app.kubernetes.io/component"} <= selector.keys()


@pytest.mark.parametrize(("overlay", "doc"), DEPLOYMENTS, ids=_each_ids(DEPLOYMENTS))
def test_deployments_probe_health_and_readiness_on_the_container_port(
    overlay: str, doc: Doc
) -> None:
    for container in containers(doc):
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


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("name", ["control-plane", "data-plane"])
def test_servers_listen_on_all_interfaces_at_their_container_port(overlay: str, name: str) -> None:
    (container,) = containers(deployment(rendered(overlay), name))
    command = argv(container)
    assert command[:2] == ["sluice", name]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    port = int(command[command.index("--port") + 1]) if "--port" in command else None
    assert port in {p["containerPort"] for p in container["ports"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_migrate_job_runs_sluice_migrate(overlay: str) -> None:
    (job,) = of_kind(rendered(overlay), "Job")
    (container,) = containers(job)
    assert argv(container) == ["sluice", "migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure")
    assert job["spec"].get("backoffLimit", 6) <= 6
    assert job["spec"].get("activeDeadlineSeconds"), "a stuck migration must not hang forever"


# --- secrets and settings -------------------------------------------------------


@pytest.mark.parametrize(("overlay", "doc"), WORKLOADS, ids=_each_ids(WORKLOADS))
def test_secret_settings_come_from_a_secret_never_a_literal(overlay: str, doc: Doc) -> None:
    example_keys = set(EXAMPLE.get("stringData", {})) | set(EXAMPLE.get("data", {}))
    for container in containers(doc):
        assert "envFrom" not in container, "name each setting; never import a whole Secret"
        variables = env(container)
        for name in SECRET_SETTINGS & variables.keys():
            var = variables[name]
            assert "value" not in var, f"{name} is a literal in {container['name']}"
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            assert ref, f"{name} in {container['name']} is not from a secretKeyRef"
            assert ref["name"] == EXAMPLE["metadata"]["name"]
            assert ref["key"] in example_keys, f"{name}: key {ref['key']!r} not in the example"
            assert not ref.get("optional", False), f"{name} must not be optional"
        assert NEEDED_SETTINGS[component(doc)] <= variables.keys()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_setting_is_a_literal_anywhere(overlay: str) -> None:
    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("name") in SECRET_SETTINGS:
                assert "value" not in node, f"{node['name']} has a literal value"
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(rendered(overlay))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_data_plane_never_gets_the_admin_token(overlay: str) -> None:
    docs = rendered(overlay)
    dump = yaml.safe_dump(deployment(docs, "data-plane"))
    assert "SLUICE_ADMIN_TOKEN" not in dump
    assert "admin-token" not in dump
    (job,) = of_kind(docs, "Job")
    assert "SLUICE_ADMIN_TOKEN" not in yaml.safe_dump(job)


@pytest.mark.parametrize(("overlay", "doc"), WORKLOADS, ids=_each_ids(WORKLOADS))
def test_service_links_are_off(overlay: str, doc: Doc) -> None:
    # A Service named sluice-data-plane would otherwise put
    # SLUICE_DATA_PLANE_PORT=tcp://10.0.0.1:8080 into every pod's environment,
    # and Settings.from_env() would refuse it as a port number.
    assert doc["spec"]["template"]["spec"].get("enableServiceLinks") is False


# --- hardening ---------------------------------------------------------------------


@pytest.mark.parametrize(("overlay", "doc"), WORKLOADS, ids=_each_ids(WORKLOADS))
def test_containers_run_unprivileged_on_a_read_only_root(overlay: str, doc: Doc) -> None:
    pod = doc["spec"]["template"]["spec"]
    pod_security = pod.get("securityContext", {})
    assert pod.get("automountServiceAccountToken") is False
    assert pod.get("hostNetwork", False) is False
    for container in containers(doc):
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


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_data_plane_has_its_cache_directory(overlay: str) -> None:
    plane = deployment(rendered(overlay), "data-plane")
    (container,) = containers(plane)
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in plane["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes[mounts["/var/cache/sluice"]]


@pytest.mark.parametrize(("overlay", "doc"), WORKLOADS, ids=_each_ids(WORKLOADS))
def test_every_container_has_requests_and_limits(overlay: str, doc: Doc) -> None:
    for container in containers(doc):
        resources = container.get("resources", {})
        for section in ("requests", "limits"):
            assert {"cpu", "memory"} <= resources.get(section, {}).keys(), (
                f"{container['name']} lacks {section}"
            )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_data_plane_requests_one_core_per_worker(overlay: str) -> None:
    (container,) = containers(deployment(rendered(overlay), "data-plane"))
    assert str(container["resources"]["requests"]["cpu"]) in ("1", "1000m")
    assert "--workers" not in argv(container), "one uvicorn process per pod; scale with replicas"


# --- availability ----------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_data_plane_spreads_over_nodes(overlay: str) -> None:
    plane = deployment(rendered(overlay), "data-plane")
    selector = plane["spec"]["selector"]["matchLabels"]
    constraints = plane["spec"]["template"]["spec"]["topologySpreadConstraints"]
    by_key = {c["topologyKey"]: c for c in constraints}
    assert "kubernetes.io/hostname" in by_key
    for constraint in constraints:
        assert constraint["labelSelector"]["matchLabels"] == selector


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_disruption_budget_covers_the_data_plane(overlay: str) -> None:
    docs = rendered(overlay)
    pod_labels = deployment(docs, "data-plane")["spec"]["template"]["metadata"]["labels"]
    budgets = [
        pdb
        for pdb in of_kind(docs, "PodDisruptionBudget")
        if pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    ]
    assert len(budgets) == 1
    spec = budgets[0]["spec"]
    assert "maxUnavailable" in spec or "minAvailable" in spec


@pytest.mark.parametrize(("overlay", "service"), SERVICES, ids=_each_ids(SERVICES))
def test_services_select_a_deployment_and_a_named_port(overlay: str, service: Doc) -> None:
    selector = service["spec"]["selector"]
    matches = [
        d
        for d in of_kind(rendered(overlay), "Deployment")
        if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
    ]
    assert len(matches) == 1, f"{service['metadata']['name']} selects {len(matches)} Deployments"
    (container,) = containers(matches[0])
    names = {p["name"] for p in container["ports"]}
    numbers = {p["containerPort"] for p in container["ports"]}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in names | numbers
