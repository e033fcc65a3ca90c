"""`kustomize build` for the subset of Kustomize that deploy/k8s uses, in Python.

The tests must render every overlay on a machine without the kustomize binary, so
this follows Kustomize's semantics for exactly these fields and refuses any other:
`resources` (files and folders with a kustomization.yaml; a folder's own
transformations are applied first), `namespace`, `images`, and `patches` given by
`path` holding strategic-merge patches (matched by kind and name; `$patch: delete`
removes the object).
Strategic merge here: mappings merge key by key, a null value removes a key,
lists whose items all have a `name` merge by name (containers, env, ports,
volumes), other lists are replaced. When `kubectl` is installed, a test compares
this renderer's output with `kubectl kustomize`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Doc", "build"]

Doc = dict[str, Any]

_KNOWN = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}
_CLUSTER_WIDE = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


def build(folder: Path) -> list[Doc]:
    """The objects `kustomize build folder` would print (in resource order)."""
    (kustomization,) = _load(folder / "kustomization.yaml")
    unknown = kustomization.keys() - _KNOWN
    assert not unknown, f"{folder}: the renderer does not support {sorted(unknown)}"
    docs: list[Doc] = []
    for entry in kustomization.get("resources", []):
        path = (folder / entry).resolve()
        docs += build(path) if path.is_dir() else _load(path)
    for patch in kustomization.get("patches", []):
        assert patch.keys() == {"path"}, f"{folder}: patch {patch} not supported"
        docs = _patch(docs, _load(folder / patch["path"]))
    namespace = kustomization.get("namespace")
    if namespace:
        for doc in docs:
            if doc["kind"] not in _CLUSTER_WIDE:
                doc["metadata"]["namespace"] = namespace
    for image in kustomization.get("images", []):
        for doc in docs:
            _set_image(doc, image)
    return docs


def _load(path: Path) -> list[Doc]:
    with path.open() as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def _patch(docs: list[Doc], patches: list[Any]) -> list[Doc]:
    for patch in patches:
        assert isinstance(patch, dict), "JSON 6902 patches are not supported"
        found = [d for d in docs if _same_object(d, patch)]
        assert len(found) == 1, (
            f"patch for {patch['kind']}/{patch['metadata']['name']} matches no object"
        )
        if patch.get("$patch") == "delete":
            docs = [d for d in docs if d is not found[0]]
        else:
            _merge(found[0], patch)
    return docs


def _same_object(doc: Doc, patch: Doc) -> bool:
    return bool(
        doc["kind"] == patch["kind"] and doc["metadata"]["name"] == patch["metadata"]["name"]
    )


def _merge(into: Doc, patch: Doc) -> None:
    for key, value in patch.items():
        if key == "$patch":
            continue
        if value is None:
            into.pop(key, None)
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        elif isinstance(value, list) and isinstance(into.get(key), list) and _named(value):
            _merge_named(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(item, dict) and "name" in item for item in items)


def _merge_named(into: list[Doc], patch: list[Doc]) -> None:
    by_name = {item["name"]: item for item in into if isinstance(item, dict)}
    for item in patch:
        if item["name"] in by_name:
            _merge(by_name[item["name"]], item)
        else:
            into.append(copy.deepcopy(item))


def _set_image(doc: Doc, image: Doc) -> None:
    pod = doc.get("spec", {}).get("template", {}).get("spec", {})
    for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
        name, _, tag = container["image"].partition(":")  # no registry port, no digest
        if name == image["name"]:
            tag = image.get("newTag", tag)
            container["image"] = image.get("newName", name) + (f":{tag}" if tag else "")
