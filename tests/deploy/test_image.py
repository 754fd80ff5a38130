"""deploy/Dockerfile against deploy/compose.yaml, which runs that one image in every role, and what
the repository keeps out of git and out of the image's build context (no container engine runs
here: the files are read)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.dashboard.app import create_dashboard

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
IMAGE = "pointsnet:latest"


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def dockerfile() -> str:
    return (DEPLOY / "Dockerfile").read_text()


def image_probe() -> tuple[str, str]:
    """The port and path the image's HEALTHCHECK asks for."""
    probe = re.search(r"^HEALTHCHECK .*?http://127\.0\.0\.1:(\d+)(/[^'\"\s]*)", dockerfile(), re.M)
    assert probe, "the Dockerfile has no HEALTHCHECK"
    return probe.group(1), probe.group(2)


def image_command() -> list[str]:
    return json.loads(re.search(r"^CMD (\[.*\])$", dockerfile(), re.M).group(1))


def long_running() -> dict[str, dict]:
    return {name: service for name, service in compose()["services"].items()
            if service.get("image") == IMAGE and name != "migrate"}


def test_every_long_running_service_of_the_image_has_a_healthcheck_that_probes_it():
    """The image's HEALTHCHECK probes the API on 8400; the worker serves no HTTP there and the
    dashboard listens on 8402: each needs its own healthcheck (or none) in compose."""
    port, path = image_probe()
    for name, service in long_running().items():
        command = service.get("command") or image_command()
        check = service.get("healthcheck")
        if command[0] == "serve-api" and command[command.index("--port") + 1] == port:
            assert check is None, f"{name}: the image's own probe fits it"
        elif command[0] == "worker":
            assert check == {"disable": True}, f"{name}: nothing on {port} to probe"
        else:
            assert check and not check.get("disable"), f"{name}: the image's probe of {port} reaches nothing"
            probe = " ".join(check["test"])
            listening = command[command.index("--port") + 1]
            assert f"http://127.0.0.1:{listening}/" in probe, f"{name}: probes another port than {listening}"


def test_the_dashboards_healthcheck_asks_its_live_route(network):
    """The compose probe's path answers 200 on the dashboard as serve-dashboard mounts it."""
    check = " ".join(compose()["services"]["dashboard"]["healthcheck"]["test"])
    path = re.search(r"http://127\.0\.0\.1:\d+(/[^'\"\s]*)", check).group(1)
    assert path.endswith("/health/live")
    root = FastAPI()
    root.mount("/dashboard", create_dashboard(network))
    with TestClient(root) as client:
        assert client.get(path).status_code == 200


def test_the_image_creates_the_data_dir_compose_mounts_a_named_volume_on_for_its_user():
    """A named volume mounted on a path the image lacks is created owned by root; the image runs as
    pointsnet, so the data directory must exist, owned by pointsnet, before USER."""
    mounts = {str(volume) for service in compose()["services"].values() for volume in service.get("volumes", [])
              if str(volume).startswith("settlements:")}
    assert mounts == {"settlements:/var/lib/pointsnet/data"}
    before_user, _ = dockerfile().split("\nUSER pointsnet", 1)
    assert re.search(r"mkdir [^\n]*/var/lib/pointsnet/data\b", before_user), "the image lacks the data directory"
    assert re.search(r"chown [^\n]*pointsnet[^\n]*/var/lib/pointsnet/data\b", before_user), "not owned by pointsnet"


def test_the_worker_serves_its_metrics_to_other_containers():
    command = compose()["services"]["worker"]["command"]
    assert command[command.index("--metrics-host") + 1] == "0.0.0.0"
    assert "--metrics-port" in command


def test_compose_secret_files_are_ignored_by_git():
    for secret in compose()["secrets"].values():
        path = (DEPLOY / secret["file"]).resolve().relative_to(ROOT)
        ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", str(path)], cwd=ROOT)
        assert ignored.returncode == 0, f"{path} (a compose secret) is not ignored by git"


def test_the_build_context_leaves_out_secrets_git_data_and_environments():
    """compose builds with the repository as context: keys, history, data and virtualenvs stay out."""
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in ("deploy/secrets/", ".git", "pointsnet-data/", ".venv/", "**/__pycache__/"):
        assert entry in ignored, f".dockerignore does not leave out {entry}"
