"""The receiver's Kubernetes manifests (deploy/receiver.yaml and the Ingress example), read the
way the offline deployment checks and the production stack both use them: the stack runs the
container's own command, on a local port, with as many replicas as the Deployment asks for."""

import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
RECEIVER_MANIFEST = ROOT / "deploy" / "receiver.yaml"
INGRESS_EXAMPLE = ROOT / "deploy" / "receiver-ingress.example.yaml"
BIN = Path(sys.executable).parent


def manifests(path: Path) -> dict[str, dict[str, Any]]:
    """The documents of a multi-document manifest, by kind (each kind once)."""
    documents = [document for document in yaml.safe_load_all(path.read_text()) if document]
    by_kind = {document["kind"]: document for document in documents}
    assert len(by_kind) == len(documents), f"{path}: one document per kind"
    return by_kind


def receiver_deployment() -> dict[str, Any]:
    return manifests(RECEIVER_MANIFEST)["Deployment"]


def receiver_container(deployment: dict[str, Any] | None = None) -> dict[str, Any]:
    (container,) = (deployment or receiver_deployment())["spec"]["template"]["spec"]["containers"]
    return container


def local_receiver_command(port: int) -> list[str]:
    """The container's command with this environment's executable, listening on
    127.0.0.1:`port` instead of the pod's 0.0.0.0:8080; every other flag as the manifest says."""
    executable, *arguments = receiver_container()["command"]
    arguments[arguments.index("--host") + 1] = "127.0.0.1"
    arguments[arguments.index("--port") + 1] = str(port)
    return [str(BIN / executable), *arguments]
