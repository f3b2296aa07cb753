"""Renders the small subset of kustomize that deploy/k8s uses: `resources` (files and
directories), `components`, `namespace` and `images`. Anything else in a
kustomization is refused, so a new feature fails loudly here instead of rendering
something else than `kubectl apply -k` would.

check_k8s.py renders with `kubectl kustomize` where kubectl exists and compares the
two, so this stays honest; on a machine without kubectl it is what gets validated.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

SUPPORTED = {"apiVersion", "kind", "namespace", "resources", "components", "images"}
# Kinds that live outside namespaces, among those a kustomization here could hold.
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "PriorityClass",
    "StorageClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
}


class KustomizeError(Exception):
    pass


def _kustomization(directory: Path) -> dict:
    for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        path = directory / name
        if path.is_file():
            data = yaml.safe_load(path.read_text()) or {}
            unknown = set(data) - SUPPORTED
            if unknown:
                raise KustomizeError(f"{path}: kustomize_lite does not support {sorted(unknown)}")
            return data
    raise KustomizeError(f"{directory}: no kustomization.yaml")


def _load(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _containers(doc: dict) -> list[dict]:
    spec = doc.get("spec") or {}
    pod = ((spec.get("jobTemplate") or {}).get("spec") or spec).get("template", {}).get("spec") or {}
    if doc.get("kind") == "Pod":
        pod = spec
    return (pod.get("containers") or []) + (pod.get("initContainers") or [])


def _set_images(docs: list[dict], images: list[dict]) -> None:
    for doc in docs:
        for container in _containers(doc):
            image = container.get("image", "")
            name, tag = image, None
            if "@" in name:
                name = name.split("@", 1)[0]
            elif ":" in name.rsplit("/", 1)[-1]:
                name, tag = name.rsplit(":", 1)
            for rule in images:
                if rule["name"] != name:
                    continue
                new_name = rule.get("newName", name)
                if "digest" in rule:
                    container["image"] = f"{new_name}@{rule['digest']}"
                else:
                    new_tag = rule.get("newTag", tag)
                    container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name


def _set_namespace(docs: list[dict], namespace: str) -> None:
    for doc in docs:
        if doc.get("kind") in CLUSTER_SCOPED:
            continue
        doc.setdefault("metadata", {})["namespace"] = namespace


def render(directory: Path) -> list[dict]:
    """The documents `kubectl kustomize directory` would produce (in another order)."""
    directory = directory.resolve()
    data = _kustomization(directory)
    docs: list[dict] = []
    for entry in data.get("resources") or []:
        path = (directory / entry).resolve()
        docs += render(path) if path.is_dir() else _load(path)
    for entry in data.get("components") or []:
        component = (directory / entry).resolve()
        component_data = _kustomization(component)
        if component_data.get("kind") != "Component":
            raise KustomizeError(f"{component}: listed under components but is not kind: Component")
        # A component's transformers act on its parent's resources too; not modelled.
        if set(component_data) & {"namespace", "images"}:
            raise KustomizeError(f"{component}: kustomize_lite supports components with resources only")
        docs += render(component)
    docs = copy.deepcopy(docs)
    if data.get("namespace"):
        _set_namespace(docs, data["namespace"])
    if data.get("images"):
        _set_images(docs, data["images"])
    return docs
