#!/usr/bin/env python3
"""Renders deploy/k8s and checks it against the Kubernetes schemas and adjoin's code.

    ADJOIN_BIN=path/to/adjoin deploy/tools/check_k8s.py [KUSTOMIZATION_DIR ...]

Run with the venv of deploy/tools/install.sh (check.sh does). Default directories:
deploy/k8s/overlays/example (checked in full) and deploy/k8s/base (rendered and
validated). What it checks:

1. Rendering: `kubectl kustomize` where kubectl exists, compared with kustomize_lite
   (which renders on machines without kubectl).
2. Every object against the Kubernetes OpenAPI schemas bundled by kubernetes-validate,
   strictly (unknown fields are errors), for the oldest and newest versions below.
3. One namespace for everything namespaced; every Secret and ConfigMap a pod reads
   exists with that key (unless optional).
4. Each Deployment's configuration loads: the ConfigMap's adjoin.toml where
   ADJOIN_CONFIG points, plus the container's environment (Secrets' example values),
   through `adjoin config --service S`; no ADJOIN variable adjoin would ignore.
5. Its metrics.listen is not loopback and is the port of the `metrics` container port,
   the probes (/healthz startup and live, /readyz ready) and the metrics Service
   (targetPort and prometheus.io/port annotation).
6. Non-root as the image's user, read-only root, no privilege escalation, no
   capabilities; requests set and a memory limit; images pinned.
7. The PodDisruptionBudget and the HPA select the join; the HPA's maxReplicas is at
   most topics.partitions, past which join replicas own no shard.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path, PurePosixPath

import kubernetes_validate
import yaml

sys.dont_write_bytecode = True  # no __pycache__ in the checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))
import kustomize_lite  # noqa: E402
from common import (  # noqa: E402
    PINNED_TAG,
    REPO,
    SERVICE_OF_COMMAND,
    Checks,
    adjoin_bin,
    env_names_read_by,
    image_tag,
    is_loopback,
    load_config,
    split_listen,
)

# The oldest Kubernetes still commonly run and the newest the schemas cover.
KUBERNETES_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
DEFAULT_DIRS = [REPO / "deploy/k8s/overlays/example", REPO / "deploy/k8s/base"]


def key(doc: dict) -> tuple:
    meta = doc.get("metadata") or {}
    return (doc.get("apiVersion"), doc.get("kind"), meta.get("namespace"), meta.get("name"))


def show(doc: dict) -> str:
    return f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"


def shown_path(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def render(directory: Path, checks: Checks) -> list[dict] | None:
    label = shown_path(directory)
    try:
        lite = kustomize_lite.render(directory)
    except (kustomize_lite.KustomizeError, OSError, yaml.YAMLError) as error:
        checks.fail(f"{label}: kustomize_lite cannot render it: {error}")
        lite = None
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        print(f"note {label}: kubectl not found, validating kustomize_lite's rendering only")
        if lite is not None:
            checks.ok(f"{label}: renders (kustomize_lite)")
        return lite
    result = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True)
    if not checks.check(result.returncode == 0, f"{label}: kubectl kustomize renders it", result.stderr.strip()):
        return None
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    if lite is not None:
        theirs = {key(doc): doc for doc in rendered}
        mine = {key(doc): doc for doc in lite}
        differing = sorted(str(k) for k in theirs.keys() | mine.keys() if theirs.get(k) != mine.get(k))
        checks.check(
            not differing,
            f"{label}: kustomize_lite renders the same {len(rendered)} objects as kubectl kustomize",
            f"they differ in {differing}: fix kustomize_lite.py or keep the kustomization within what it supports",
        )
    return rendered


def validate_schemas(docs: list[dict], label: str, checks: Checks) -> None:
    for doc in docs:
        problems = []
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                where = ".".join(str(part) for part in error.path) or "(top level)"
                problems.append(f"Kubernetes {version}: {where}: {error.message}")
            except kubernetes_validate.SchemaNotFoundError as error:
                problems.append(error.message)
        checks.check(
            not problems,
            f"{label}: {show(doc)} is valid for Kubernetes {' and '.join(KUBERNETES_VERSIONS)}",
            "; ".join(problems),
        )


def find(docs: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind and (name is None or d["metadata"].get("name") == name)]


def secret_value(docs: list[dict], name: str, secret_key: str) -> str | None:
    for secret in find(docs, "Secret", name):
        if secret_key in (secret.get("stringData") or {}):
            return str(secret["stringData"][secret_key])
        if secret_key in (secret.get("data") or {}):
            return base64.b64decode(secret["data"][secret_key]).decode()
    return None


def configmap_value(docs: list[dict], name: str, map_key: str) -> str | None:
    for configmap in find(docs, "ConfigMap", name):
        if map_key in (configmap.get("data") or {}):
            return str(configmap["data"][map_key])
    return None


def image_user(dockerfile: Path) -> int | None:
    """The uid of the last USER instruction of a Dockerfile."""
    users = re.findall(r"^USER\s+(\d+)", dockerfile.read_text(), re.MULTILINE)
    return int(users[-1]) if users else None


def check_namespaces_and_refs(docs: list[dict], label: str, checks: Checks) -> None:
    namespaces = [d["metadata"]["name"] for d in find(docs, "Namespace")]
    if not checks.check(len(namespaces) == 1, f"{label}: one Namespace object", f"found {namespaces}"):
        return
    stray = [show(d) for d in docs if d.get("kind") not in kustomize_lite.CLUSTER_SCOPED
             and (d.get("metadata") or {}).get("namespace") != namespaces[0]]
    checks.check(not stray, f"{label}: every namespaced object is in {namespaces[0]}",
                 f"{stray} are not (set `namespace:` in the kustomization that adds them)")
    for deployment in find(docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        for container in pod.get("containers") or []:
            for env in container.get("env") or []:
                source = env.get("valueFrom") or {}
                for ref_kind, lookup in (("secretKeyRef", secret_value), ("configMapKeyRef", configmap_value)):
                    ref = source.get(ref_kind)
                    if ref and not ref.get("optional"):
                        checks.check(
                            lookup(docs, ref["name"], ref["key"]) is not None,
                            f"{label}: {show(deployment)} {env['name']} from {ref['name']}/{ref['key']} exists",
                            "the pod would not start (CreateContainerConfigError)",
                        )
        for volume in pod.get("volumes") or []:
            if "configMap" in volume:
                checks.check(
                    bool(find(docs, "ConfigMap", volume["configMap"]["name"])),
                    f"{label}: {show(deployment)} volume {volume['name']} ConfigMap exists",
                    f"no ConfigMap {volume['configMap']['name']}",
                )


def container_config(docs: list[dict], pod: dict, container: dict, workdir: Path,
                     binary: Path, service: str) -> tuple[dict | None, str]:
    """Loads what the container would load: its environment, with ADJOIN_CONFIG
    pointing at a copy of the mounted ConfigMap file."""
    env: dict[str, str] = {}
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        source = item.get("valueFrom") or {}
        if "secretKeyRef" in source:
            value = secret_value(docs, source["secretKeyRef"]["name"], source["secretKeyRef"]["key"])
        elif "configMapKeyRef" in source:
            value = configmap_value(docs, source["configMapKeyRef"]["name"], source["configMapKeyRef"]["key"])
        else:
            continue
        if value is not None:
            env[item["name"]] = value
    if "ADJOIN_CONFIG" in env:
        path = PurePosixPath(env["ADJOIN_CONFIG"])
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        for mount in container.get("volumeMounts") or []:
            if path.parent != PurePosixPath(mount["mountPath"]):
                continue
            configmap = volumes.get(mount["name"], {}).get("configMap")
            if configmap is None:
                continue
            items = {item["path"]: item["key"] for item in configmap.get("items") or []}
            text = configmap_value(docs, configmap["name"], items.get(path.name, path.name))
            if text is None:
                return None, f"ADJOIN_CONFIG={path}: ConfigMap {configmap['name']} has no key for {path.name}"
            copy = workdir / f"{container['name']}-{path.name}"
            copy.write_text(text)
            env["ADJOIN_CONFIG"] = str(copy)
            break
        else:
            return None, f"ADJOIN_CONFIG={path} is not a file of a mounted ConfigMap"
    return load_config(binary, env, service)


def check_deployments(docs: list[dict], label: str, binary: Path, checks: Checks) -> dict[str, dict]:
    cli_env_names = env_names_read_by(binary)
    uid = image_user(REPO / "deploy/Dockerfile")
    configs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for deployment in find(docs, "Deployment"):
            name = deployment["metadata"]["name"]
            template = deployment["spec"]["template"]
            pod = template["spec"]
            pod_security = pod.get("securityContext") or {}
            for container in pod.get("containers") or []:
                what = f"{label}: {name}/{container['name']}"
                tag = image_tag(container.get("image", ""))
                checks.check(tag is not None and (tag == "@digest" or bool(PINNED_TAG.match(tag))),
                             f"{what}: image {container.get('image')} is pinned",
                             "name a release tag or a digest")
                args = container.get("args") or []
                service = SERVICE_OF_COMMAND.get(args[0] if args else "")
                if not checks.check(service in ("ingest", "join", "sink"), f"{what}: runs an adjoin service ({args[:1]})",
                                    "args must start with ingest, join or sink"):
                    continue
                names = [item["name"] for item in container.get("env") or []]
                ignored = [n for n in names if n.upper().startswith("ADJOIN") and not n.startswith("ADJOIN__")
                           and n not in cli_env_names]
                checks.check(not ignored, f"{what}: every ADJOIN variable is read by adjoin",
                             f"{ignored} would be ignored (keys are ADJOIN__SECTION__KEY; others: {sorted(cli_env_names)})")
                config, error = container_config(docs, pod, container, Path(scratch), binary, service)
                if not checks.check(config is not None, f"{what}: its configuration loads (adjoin config --service {service})", error):
                    continue
                configs[name] = config
                host, port = split_listen(config["metrics"]["listen"])
                checks.check(not is_loopback(host), f"{what}: metrics.listen {config['metrics']['listen']} is reachable",
                             "set ADJOIN__METRICS__LISTEN=0.0.0.0:PORT: the kubelet and Prometheus cannot reach loopback")
                ports = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
                checks.check(ports.get("metrics") == port, f"{what}: container port `metrics` is {port}",
                             f"it is {ports.get('metrics')!r}")
                # startupProbe: the metrics server answers only after start-up, so
                # without it a slow start (brokers away) trips the liveness probe.
                for probe_name, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"),
                                         ("readinessProbe", "/readyz")):
                    http = (container.get(probe_name) or {}).get("httpGet") or {}
                    probe_port = http.get("port")
                    probe_port = ports.get(probe_port) if isinstance(probe_port, str) else probe_port
                    checks.check(http.get("path") == path and probe_port == port,
                                 f"{what}: {probe_name} is GET {path} on {port}",
                                 f"it is {http.get('path')} on {http.get('port')}")
                security = container.get("securityContext") or {}
                run_as_user = security.get("runAsUser", pod_security.get("runAsUser"))
                checks.check(
                    security.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is True and run_as_user == uid
                    and security.get("readOnlyRootFilesystem") is True
                    and security.get("allowPrivilegeEscalation") is False
                    and "ALL" in ((security.get("capabilities") or {}).get("drop") or []),
                    f"{what}: runs as the image's user {uid}, read-only, unprivileged",
                    f"runAsNonRoot, runAsUser equal to deploy/Dockerfile's numeric USER ({uid}), readOnlyRootFilesystem, "
                    "allowPrivilegeEscalation false and capabilities drop ALL are all required",
                )
                resources = container.get("resources") or {}
                checks.check(
                    {"cpu", "memory"} <= set(resources.get("requests") or {}) and "memory" in (resources.get("limits") or {}),
                    f"{what}: cpu and memory requests and a memory limit",
                    f"resources are {resources}",
                )
                pod_labels = template["metadata"].get("labels") or {}
                services = [s for s in find(docs, "Service")
                            if s["spec"].get("selector") and s["spec"]["selector"].items() <= pod_labels.items()]
                good = [s for s in services
                        if any(ports.get(p.get("targetPort")) == port or p.get("targetPort") == port for p in s["spec"]["ports"])
                        and (s["metadata"].get("annotations") or {}).get("prometheus.io/port") == str(port)
                        and (s["metadata"].get("annotations") or {}).get("prometheus.io/scrape") == "true"]
                checks.check(bool(good), f"{what}: a metrics Service targets port {port} with prometheus.io annotations",
                             f"Services selecting its pods: {[show(s) for s in services]}")
    return configs


def check_scaling(docs: list[dict], configs: dict[str, dict], label: str, checks: Checks) -> None:
    deployments = {d["metadata"]["name"]: d for d in find(docs, "Deployment")}
    for pdb in find(docs, "PodDisruptionBudget"):
        selector = pdb["spec"].get("selector", {}).get("matchLabels") or {}
        matched = [name for name, d in deployments.items()
                   if selector and selector.items() <= (d["spec"]["template"]["metadata"].get("labels") or {}).items()]
        checks.check(bool(matched), f"{label}: {show(pdb)} selects {matched}",
                     "its selector matches no Deployment's pods")
    checks.check(bool(find(docs, "PodDisruptionBudget", "adjoin-join")), f"{label}: the join has a PodDisruptionBudget",
                 "add one, so a drain moves one join replica at a time")
    for hpa in find(docs, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        config = configs.get(target.get("name"))
        if not checks.check(target.get("kind") == "Deployment" and target.get("name") in deployments,
                            f"{label}: {show(hpa)} scales Deployment {target.get('name')}", "no such Deployment"):
            continue
        if config is None:
            continue  # its configuration did not load: reported above
        partitions = config["topics"]["partitions"]
        checks.check(
            hpa["spec"]["maxReplicas"] <= partitions and hpa["spec"].get("minReplicas", 1) <= hpa["spec"]["maxReplicas"],
            f"{label}: {show(hpa)} maxReplicas {hpa['spec']['maxReplicas']} <= topics.partitions {partitions}",
            "join replicas beyond topics.partitions own no shard: lower maxReplicas or raise topics.partitions",
        )
    if len(configs) > 1:
        first_name, first = sorted(configs.items())[0]
        for name, config in sorted(configs.items())[1:]:
            same = all(config[s] == first[s] for s in ("kafka", "topics")) and \
                config["ingest"]["impressions_keyed_topic"] == first["ingest"]["impressions_keyed_topic"] and \
                config["join"]["outcomes_topic"] == first["join"]["outcomes_topic"]
            checks.check(same, f"{label}: {name} uses the same brokers and topics as {first_name}",
                         "one pipeline needs one set of topics and brokers")


def main() -> int:
    directories = [Path(arg).resolve() for arg in sys.argv[1:]] or DEFAULT_DIRS
    binary = adjoin_bin()
    checks = Checks("check_k8s")
    print(f"checking {', '.join(shown_path(d) for d in directories)} with {binary}")
    for index, directory in enumerate(directories):
        label = shown_path(directory)
        docs = render(directory, checks)
        if docs is None:
            continue
        validate_schemas(docs, label, checks)
        if index == 0:  # the full installation; the others are parts of it
            check_namespaces_and_refs(docs, label, checks)
            configs = check_deployments(docs, label, binary, checks)
            check_scaling(docs, configs, label, checks)
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
