#!/usr/bin/env python3
"""Checks docker-compose.yml against Docker Compose itself and against adjoin's code.

    ADJOIN_BIN=path/to/adjoin deploy/tools/check_compose.py [COMPOSE_FILE]

Run with the venv of deploy/tools/install.sh (check.sh does). What it checks:

1. Docker Compose v2 (`docker-compose config`) accepts the file, with the default
   profiles and with every profile, in an environment without overrides.
2. The images compose pulls and the Dockerfiles' base images are pinned tags, and
   hadolint accepts the Dockerfiles compose builds.
3. Every adjoin service's environment loads: `adjoin config --service S` with exactly
   that environment (unknown ADJOIN__ keys and bad values are errors there), and no
   ADJOIN... variable is one adjoin would silently ignore.
4. Each adjoin service listens on a non-loopback metrics.listen, its published ports
   are that port, every service it depends on as healthy has a health check, and the
   health check really passes on 200 and fails on 503 from /readyz (a local server,
   then a real `adjoin demo`).
5. Every Prometheus scrape target is a compose service on the port its metrics.listen
   sets, and every adjoin service with a health check is scraped; the scalable join
   has no fixed container name or host port.
6. Grafana's and Prometheus's mounts exist in the repository and land where the
   provisioning files say; the datasource's host is the Prometheus service.
7. topics-init creates exactly the topics `adjoin config` implies, with the services'
   partition count; all adjoin services agree on brokers and topics, and the brokers
   are an advertised Kafka listener.
8. Database URLs point at the postgres service with its user, password and database.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import yaml

sys.dont_write_bytecode = True  # no __pycache__ in the checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    PINNED_TAG,
    REPO,
    SERVICE_OF_COMMAND,
    TOOLS_DIR,
    Checks,
    adjoin_bin,
    base_env,
    config_topics,
    env_names_read_by,
    image_tag,
    is_loopback,
    load_config,
    split_listen,
)
from probe_test import free_port, probe_outcomes, run_probe  # noqa: E402

ADJOIN_DOCKERFILE = "deploy/Dockerfile"


def unescape(value):
    """Compose's normalised output writes a literal `$` as `$$`; the container sees `$`."""
    if isinstance(value, str):
        return value.replace("$$", "$")
    if isinstance(value, list):
        return [unescape(item) for item in value]
    return value


def compose_model(compose_bin: Path, compose_file: Path, checks: Checks) -> dict | None:
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(compose_bin), "-f", str(compose_file), "--project-directory", str(REPO), *args],
            capture_output=True,
            text=True,
            env=base_env(),
        )

    default = run("config", "--quiet")
    checks.check(
        default.returncode == 0,
        "docker-compose config accepts the file (default profiles)",
        default.stderr.strip(),
    )
    everything = run("--profile", "*", "config", "--format", "json")
    if not checks.check(
        everything.returncode == 0,
        "docker-compose config accepts the file (every profile)",
        everything.stderr.strip(),
    ):
        return None
    return json.loads(everything.stdout)


def dockerfile_base_images(path: Path) -> list[str]:
    """The FROM images of a Dockerfile with its ARG defaults substituted."""
    args: dict[str, str] = {}
    stages: set[str] = set()
    images = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if match := re.match(r"ARG\s+(\w+)=(\S+)", line):
            args.setdefault(match[1], match[2])
        elif match := re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE):
            image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m[1] or m[2], m[0]), match[1])
            if image not in stages:
                images.append(image)
            if match[2]:
                stages.add(match[2])
    return images


def check_images(model: dict, checks: Checks) -> None:
    dockerfiles = set()
    for name, service in sorted(model["services"].items()):
        image = service.get("image")
        build = service.get("build")
        if build:
            dockerfile = Path(build.get("context", ".")) / build.get("dockerfile", "Dockerfile")
            dockerfiles.add(dockerfile)
            checks.check(
                bool(image) and dockerfile.is_file(),
                f"{name}: built from {dockerfile.relative_to(REPO) if dockerfile.is_relative_to(REPO) else dockerfile} as {image}",
                "a built service needs an existing Dockerfile and an image name, so every "
                "service and replica runs the same build",
            )
            continue
        tag = image_tag(image or "")
        checks.check(
            tag is not None and (tag == "@digest" or bool(PINNED_TAG.match(tag))),
            f"{name}: image {image} is pinned",
            "name a release tag (at least MAJOR.MINOR) or a digest, not latest or a bare major",
        )
    hadolint = Path(sys.executable).parent / "hadolint"
    for dockerfile in sorted(dockerfiles):
        shown = dockerfile.relative_to(REPO)
        lint = subprocess.run([str(hadolint), "--no-color", str(dockerfile)], capture_output=True, text=True)
        checks.check(
            lint.returncode == 0,
            f"{shown}: hadolint finds nothing",
            (lint.stdout + lint.stderr).strip() + " (fix it, or add `# hadolint ignore=RULE` with the reason)",
        )
        for image in dockerfile_base_images(dockerfile):
            tag = image_tag(image)
            checks.check(
                tag is not None and (tag == "@digest" or bool(PINNED_TAG.match(tag))),
                f"{shown}: base image {image} is pinned",
                "name a release tag (at least MAJOR.MINOR) or a digest",
            )


def adjoin_services(model: dict) -> dict[str, dict]:
    return {
        name: service
        for name, service in model["services"].items()
        if (service.get("build") or {}).get("dockerfile") == ADJOIN_DOCKERFILE
    }


def check_adjoin_env(model: dict, binary: Path, checks: Checks) -> dict[str, dict]:
    """Loads every adjoin service's configuration; returns the effective ones."""
    cli_env_names = env_names_read_by(binary)
    effective: dict[str, dict] = {}
    for name, service in sorted(adjoin_services(model).items()):
        env = {key: unescape(str(value)) for key, value in (service.get("environment") or {}).items()}
        ignored = [
            key
            for key in env
            if key.upper().startswith("ADJOIN") and not key.startswith("ADJOIN__") and key not in cli_env_names
        ]
        checks.check(
            not ignored,
            f"{name}: every ADJOIN variable is read by adjoin",
            f"{', '.join(ignored)} would be ignored: configuration keys are ADJOIN__SECTION__KEY "
            f"(two underscores), other variables are one of {sorted(cli_env_names)}",
        )
        command = unescape(service.get("command") or [])
        subcommand = command[0] if command else None
        service_name = SERVICE_OF_COMMAND.get(subcommand)
        config, error = load_config(binary, env, service_name)
        shown = f"adjoin config{' --service ' + service_name if service_name else ''}"
        if checks.check(config is not None, f"{name}: its environment loads ({shown})", error):
            effective[name] = config
    return effective


def healthcheck_command(service: dict) -> list[str] | None:
    test = unescape((service.get("healthcheck") or {}).get("test"))
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        return test[1:]
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", test[1]]
    return None


def check_ports_and_health(model: dict, configs: dict[str, dict], binary: Path, checks: Checks) -> None:
    services = model["services"]
    for name, config in sorted(configs.items()):
        service = services[name]
        subcommand = (unescape(service.get("command") or [None]))[0]
        if subcommand not in SERVICE_OF_COMMAND:
            continue  # one-shot commands (verify) serve nothing
        host, port = split_listen(config["metrics"]["listen"])
        checks.check(
            not is_loopback(host),
            f"{name}: metrics.listen {config['metrics']['listen']} is reachable from outside the container",
            "set ADJOIN__METRICS__LISTEN=0.0.0.0:PORT; on 127.0.0.1 neither Prometheus nor a "
            "published port reaches it",
        )
        for published in service.get("ports") or []:
            checks.check(
                int(published["target"]) == port,
                f"{name}: published port {published.get('published')} -> {published['target']} is its metrics port",
                f"metrics.listen is port {port}",
            )
    for name, service in sorted(services.items()):
        for dependency, how in sorted((service.get("depends_on") or {}).items()):
            if how.get("condition") == "service_healthy":
                checks.check(
                    healthcheck_command(services[dependency]) is not None,
                    f"{name}: depends on {dependency} being healthy, which has a health check",
                    "compose would wait forever; add a healthcheck or use service_started",
                )
    join = services.get("join")
    if join is not None:
        checks.check(
            not join.get("container_name") and not join.get("ports"),
            "join: no container_name and no host port, so --scale join=N works",
            "a fixed name or host port allows one replica only",
        )

    # The probe of every adjoin service with a health check, exercised for real.
    probes: dict[str, list[str]] = {}
    for service_name in sorted(adjoin_services(model)):
        if (command := healthcheck_command(services[service_name])) is not None:
            probes.setdefault(json.dumps(command), []).append(service_name)
    for command_json, names in probes.items():
        command = json.loads(command_json)
        name = ", ".join(names)
        outcomes = probe_outcomes(command, base_env(), "0.0.0.0")
        checks.check(
            outcomes["200"] == 0 and outcomes["503"] != 0 and outcomes["closed"] != 0,
            f"{name}: health check passes on /readyz 200 and fails on 503 and on a closed port",
            f"exit codes {outcomes}",
        )
        passed, demo_output = probe_real_adjoin(command, binary)
        checks.check(
            passed,
            f"{name}: health check passes against a running `adjoin demo`",
            "it never passed within 40 s; the demo's stderr:\n" + demo_output,
        )


def probe_real_adjoin(command: list[str], binary: Path) -> tuple[bool, str]:
    """Starts `adjoin demo` (embedded Kafka, SQLite in a temporary directory) with
    metrics on a free loopback port, and runs the probe until it passes. Returns
    whether it did, and the demo's stderr."""
    port = free_port()
    env = {**base_env(), "ADJOIN__METRICS__LISTEN": f"127.0.0.1:{port}", "RUST_LOG": "warn", "NO_COLOR": "1"}
    with tempfile.TemporaryDirectory() as workdir:
        demo = subprocess.Popen(
            [str(binary), "demo", "--rate", "20", "--duration", "60s", "--every", "60s"],
            cwd=workdir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            passed = False
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and demo.poll() is None:
                if run_probe(command, env, timeout=10) == 0:
                    passed = True
                    break
                time.sleep(0.5)
        finally:
            if demo.poll() is None:
                os.killpg(demo.pid, signal.SIGTERM)
            try:
                _, stderr = demo.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(demo.pid, signal.SIGKILL)
                _, stderr = demo.communicate()
        return passed, stderr.strip()


def mounts(service: dict) -> list[dict]:
    return [volume for volume in service.get("volumes") or [] if volume.get("type") == "bind"]


def mount_source(service: dict, target: str) -> Path | None:
    for volume in mounts(service):
        if volume["target"] == target:
            return Path(volume["source"])
    return None


def check_mounts(model: dict, checks: Checks) -> None:
    for name, service in sorted(model["services"].items()):
        for volume in mounts(service):
            source = Path(volume["source"])
            checks.check(
                source.exists() and source.is_relative_to(REPO),
                f"{name}: mount {source.relative_to(REPO) if source.is_relative_to(REPO) else source} -> {volume['target']} exists in the repository",
                "the source is missing, so Docker would create an empty directory in its place",
            )


def check_prometheus(model: dict, configs: dict[str, dict], checks: Checks) -> None:
    services = model["services"]
    prometheus = services.get("prometheus")
    if not checks.check(prometheus is not None, "a prometheus service exists", "Grafana's datasource needs it"):
        return
    source = mount_source(prometheus, "/etc/prometheus/prometheus.yml")
    if not checks.check(
        source is not None and source.is_file(),
        "prometheus: deploy/prometheus/prometheus.yml is mounted as /etc/prometheus/prometheus.yml",
        "mount the scrape configuration there (the image's default config path)",
    ):
        return
    scrape = yaml.safe_load(source.read_text())
    scraped: set[str] = set()
    for job in scrape.get("scrape_configs") or []:
        targets = [target for static in job.get("static_configs") or [] for target in static.get("targets") or []]
        for dns in job.get("dns_sd_configs") or []:
            targets += [f"{dns_name}:{dns.get('port')}" for dns_name in dns.get("names") or []]
        for target in targets:
            host, _, port = target.rpartition(":")
            if not checks.check(
                host in adjoin_services(model),
                f"prometheus job {job['job_name']}: target {target} is an adjoin compose service",
                f"no adjoin service named {host!r} (services: {sorted(adjoin_services(model))})",
            ):
                continue
            scraped.add(host)
            config = configs.get(host)
            if config is None:
                continue  # its configuration did not load: reported above
            listen_port = split_listen(config["metrics"]["listen"])[1]
            checks.check(
                int(port) == listen_port,
                f"prometheus job {job['job_name']}: {target} is {host}'s metrics.listen port",
                f"{host} listens on {config['metrics']['listen']}",
            )
    for name in sorted(adjoin_services(model)):
        if healthcheck_command(services[name]) is not None:
            checks.check(
                name in scraped,
                f"prometheus scrapes {name}",
                f"add a job for {name} to {source.relative_to(REPO)}",
            )


def check_grafana(model: dict, checks: Checks) -> None:
    services = model["services"]
    grafana = services.get("grafana")
    if not checks.check(grafana is not None, "a grafana service exists", "the actor dashboard needs it"):
        return
    provisioning = mount_source(grafana, "/etc/grafana/provisioning")
    if not checks.check(
        provisioning is not None and provisioning.is_dir(),
        "grafana: deploy/grafana/provisioning is mounted at /etc/grafana/provisioning",
        "Grafana reads datasources and dashboard providers only from there",
    ):
        return
    for provider_file in sorted((provisioning / "dashboards").glob("*.y*ml")):
        for provider in yaml.safe_load(provider_file.read_text()).get("providers") or []:
            path = (provider.get("options") or {}).get("path")
            source = mount_source(grafana, path)
            checks.check(
                source is not None and source.is_dir() and any(source.glob("*.json")),
                f"grafana: provider {provider.get('name')} path {path} is a mounted directory of dashboards",
                f"mount deploy/grafana/dashboards at {path} ({provider_file.relative_to(REPO)})",
            )
    for datasource_file in sorted((provisioning / "datasources").glob("*.y*ml")):
        for datasource in yaml.safe_load(datasource_file.read_text()).get("datasources") or []:
            url = urlsplit(datasource.get("url", ""))
            target = services.get(url.hostname or "")
            checks.check(
                target is not None and "prometheus" in target.get("image", "") and url.port == 9090,
                f"grafana: datasource {datasource.get('name')} ({datasource.get('url')}) is the prometheus service",
                "the host must be the compose service running Prometheus, on its port 9090",
            )


def check_topics_and_brokers(model: dict, configs: dict[str, dict], checks: Checks) -> None:
    services = model["services"]
    running = {name: config for name, config in configs.items()
               if unescape(services[name].get("command") or [None])[0] in ("ingest", "join", "sink", "generate")}
    if not running:
        return
    reference_name = sorted(running)[0]
    reference = running[reference_name]
    for name, config in sorted(running.items())[1:]:
        for section, keys in (("kafka", ["brokers"]), ("topics", None), ("ingest", ["impressions_keyed_topic", "clicks_keyed_topic"]),
                              ("join", ["outcomes_topic"]), ("sink", ["dlq_topic"])):
            mine = {k: v for k, v in config[section].items() if keys is None or k in keys}
            theirs = {k: v for k, v in reference[section].items() if keys is None or k in keys}
            if mine != theirs:
                checks.fail(f"{name}: [{section}] {mine} differs from {reference_name}'s {theirs}: one pipeline needs one set of topics and brokers")
                break
        else:
            checks.ok(f"{name}: same brokers and topics as {reference_name}")

    init = services.get("topics-init")
    if checks.check(init is not None, "a topics-init service exists", "it creates the topics up front"):
        env = {key: unescape(str(value)) for key, value in (init.get("environment") or {}).items()}
        created = set(env.get("TOPICS", "").split())
        expected = config_topics(reference)
        checks.check(
            created == expected,
            f"topics-init creates the {len(expected)} topics adjoin uses",
            f"missing {sorted(expected - created)}, not used by adjoin {sorted(created - expected)}",
        )
        checks.check(
            env.get("PARTITIONS") == str(reference["topics"]["partitions"]),
            f"topics-init uses topics.partitions ({reference['topics']['partitions']})",
            f"it creates {env.get('PARTITIONS')} partitions",
        )
        checks.check(
            env.get("REPLICATION_FACTOR") == str(reference["topics"]["replication_factor"]),
            f"topics-init uses topics.replication_factor ({reference['topics']['replication_factor']})",
            f"it uses {env.get('REPLICATION_FACTOR')}",
        )
        for name in sorted(running):
            checks.check(
                (services[name].get("depends_on") or {}).get("topics-init", {}).get("condition")
                == "service_completed_successfully",
                f"{name}: starts after topics-init completed",
                "add depends_on topics-init: condition: service_completed_successfully",
            )

    kafka = services.get("kafka", {})
    advertised = str((kafka.get("environment") or {}).get("KAFKA_ADVERTISED_LISTENERS", ""))
    endpoints = {listener.split("://", 1)[1] for listener in advertised.split(",") if "://" in listener}
    for broker in reference["kafka"]["brokers"].split(","):
        checks.check(
            broker.strip() in endpoints,
            f"kafka.brokers {broker} is an advertised listener of the kafka service",
            f"advertised: {sorted(endpoints)}",
        )


def check_database_urls(model: dict, checks: Checks) -> None:
    services = model["services"]
    postgres_env = (services.get("postgres") or {}).get("environment") or {}
    for name, service in sorted(adjoin_services(model).items()):
        url = unescape(str((service.get("environment") or {}).get("ADJOIN__DATABASE__URL", "")))
        if not url:
            continue
        parts = urlsplit(url)
        checks.check(
            parts.hostname == "postgres"
            and parts.username == postgres_env.get("POSTGRES_USER")
            and parts.password == postgres_env.get("POSTGRES_PASSWORD")
            and parts.path.lstrip("/") == postgres_env.get("POSTGRES_DB"),
            f"{name}: database.url is the postgres service's database, user and password",
            f"{parts.scheme}://{parts.username}:...@{parts.hostname}:{parts.port}{parts.path} vs "
            f"POSTGRES_USER={postgres_env.get('POSTGRES_USER')} POSTGRES_DB={postgres_env.get('POSTGRES_DB')}",
        )
    superset = services.get("superset")
    init = services.get("superset-db-init")
    if superset is None or init is None:
        return
    superset_env = superset.get("environment") or {}
    password = (init.get("environment") or {}).get("SUPERSET_DB_PASSWORD")
    # deploy/superset/compose-db-init.sh creates the role and database `superset`.
    for key, database in (
        ("SUPERSET_ADJOIN_DATABASE_URL", postgres_env.get("POSTGRES_DB")),
        ("SUPERSET_METADATA_DB_URI", "superset"),
    ):
        parts = urlsplit(unescape(str(superset_env.get(key, ""))))
        checks.check(
            parts.hostname == "postgres" and parts.username == "superset"
            and parts.password == password and parts.path.lstrip("/") == database,
            f"superset: {key} is the role superset-db-init creates, on database {database}",
            f"{parts.username}:...@{parts.hostname}{parts.path}; the password must be SUPERSET_DB_PASSWORD "
            "of superset-db-init",
        )


def main() -> int:
    compose_file = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "docker-compose.yml").resolve()
    compose_bin = Path(os.environ.get("COMPOSE_BIN", TOOLS_DIR / "bin/docker-compose"))
    if not compose_bin.is_file():
        sys.exit(f"error: no docker-compose at {compose_bin}: run deploy/tools/install.sh first (or set COMPOSE_BIN)")
    binary = adjoin_bin()
    checks = Checks("check_compose")
    print(f"checking {compose_file} with {compose_bin} and {binary}")
    model = compose_model(compose_bin, compose_file, checks)
    if model is None:
        return checks.finish()
    check_images(model, checks)
    configs = check_adjoin_env(model, binary, checks)
    check_ports_and_health(model, configs, binary, checks)
    check_mounts(model, checks)
    check_prometheus(model, configs, checks)
    check_grafana(model, checks)
    check_topics_and_brokers(model, configs, checks)
    check_database_urls(model, checks)
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
