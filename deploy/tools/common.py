"""What check_compose.py and check_k8s.py share: finding the tools and the adjoin
binary, running `adjoin config` with a given environment, and counting results."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOLS_DIR = Path(os.environ.get("DEPLOY_TOOLS_DIR", Path.home() / ".cache/adjoin/deploy-tools"))

# `adjoin config --service NAME` for each subcommand that runs a service; the others
# (verify) load the configuration without a service's defaults.
SERVICE_OF_COMMAND = {"ingest": "ingest", "join": "join", "sink": "sink", "generate": "generator"}

# A tag that names a release, not a moving pointer: at least MAJOR.MINOR, or a digest.
PINNED_TAG = re.compile(r"^v?\d+\.\d+[\w.+-]*$")


class Checks:
    """Collects results; every failure says what is wrong and where to fix it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.passed = 0
        self.failures: list[str] = []

    def ok(self, what: str) -> None:
        self.passed += 1
        print(f"ok   {what}")

    def fail(self, what: str) -> None:
        self.failures.append(what)
        print(f"FAIL {what}")

    def check(self, condition: bool, what: str, why: str) -> bool:
        if condition:
            self.ok(what)
        else:
            self.fail(f"{what}: {why}")
        return condition

    def finish(self) -> int:
        print(f"{self.name}: {self.passed} passed, {len(self.failures)} failed")
        return 1 if self.failures else 0


def adjoin_bin() -> Path:
    """The adjoin binary the checks load configurations with: ADJOIN_BIN, else the
    debug build in the CI target directory."""
    explicit = os.environ.get("ADJOIN_BIN")
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/adjoin/target"))
    path = Path(explicit) if explicit else target_dir / "debug/adjoin"
    if not (path.is_file() and os.access(path, os.X_OK)):
        sys.exit(
            f"error: no adjoin binary at {path}: set ADJOIN_BIN to a built `adjoin` "
            "(cargo build -p adjoin); the checks load every configuration with it"
        )
    return path


def env_names_read_by(binary: Path) -> set[str]:
    """The plain environment variables the CLI reads (clap's `[env: NAME=]`), such as
    ADJOIN_CONFIG, as opposed to ADJOIN__SECTION__KEY configuration keys."""
    names: set[str] = set()
    for args in (["--help"], ["ingest", "--help"], ["generate", "--help"], ["verify", "--help"]):
        out = subprocess.run([binary, *args], capture_output=True, text=True, env=base_env())
        names.update(re.findall(r"\[env: ([A-Z0-9_]+)=", out.stdout))
    return names


def base_env() -> dict[str, str]:
    """A minimal environment, so variables of the machine running the check (an
    ADJOIN__... left exported in CI) cannot change what is being checked."""
    return {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}


def load_config(binary: Path, env: dict[str, str], service: str | None) -> tuple[dict | None, str]:
    """Runs `adjoin config [--service S]` with exactly `env` (plus PATH and HOME) and
    returns the effective configuration, or None and adjoin's error message."""
    args = [str(binary), "config"] + (["--service", service] if service else [])
    result = subprocess.run(args, capture_output=True, text=True, env={**base_env(), **env}, timeout=30)
    if result.returncode != 0:
        message = result.stderr.strip() or result.stdout.strip() or f"exit {result.returncode}"
        # With ADJOIN_LOG_FORMAT=json the failure is a JSON log line; show its error.
        try:
            message = json.loads(message.splitlines()[-1])["error"]
        except (ValueError, KeyError, TypeError, IndexError):
            pass
        return None, message
    try:
        return tomllib.loads(result.stdout), ""
    except tomllib.TOMLDecodeError as error:
        return None, f"`adjoin config` printed something that is not TOML: {error}"


def config_topics(config: dict) -> set[str]:
    """Every topic the services use with this configuration: raw, keyed, outcomes and
    the dead-letter topics (`<raw>.dlq`, `<keyed>.dlq`, sink.dlq_topic), as ingest,
    join and sink create them (shared/src/keyed.rs `dlq_topic`)."""
    raw = [config["topics"]["impressions"], config["topics"]["clicks"]]
    keyed = [config["ingest"]["impressions_keyed_topic"], config["ingest"]["clicks_keyed_topic"]]
    return {
        *raw,
        *keyed,
        config["join"]["outcomes_topic"],
        config["sink"]["dlq_topic"],
        *(f"{name}.dlq" for name in raw + keyed),
    }


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    return host.startswith("127.") or host in ("::1", "localhost")


def image_tag(image: str) -> str | None:
    """The tag of an image reference (None without one); a digest counts as pinned."""
    if "@sha256:" in image:
        return "@digest"
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None
