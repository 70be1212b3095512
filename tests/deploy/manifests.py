"""Reading deploy/ and the Dockerfile the way Kubernetes and Docker would.

Each folder of deploy/ is a kustomization: ``resources`` lists its manifests and a
``configMapGenerator`` makes the ConfigMap holding config.yaml. The image's ``ENV``
settings, the container's ``env`` and the mounted file make the configuration the
server runs with; this module turns them into one environment and one file path.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = ROOT / "Dockerfile"
IMAGE = "llmrouter"
"""The repository name the manifests run the Dockerfile's image as."""


@dataclass(frozen=True)
class Folder:
    """One kustomization: its manifests and its generated ConfigMaps."""

    path: Path
    resources: list[dict[str, Any]]
    generated: dict[str, dict[str, Path]]
    """ConfigMap name to {key: file}, from ``configMapGenerator``."""

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Router:
    """An llmrouter container and the Pod template it runs in."""

    folder: Folder
    pod: dict[str, Any]
    container: dict[str, Any]
    sidecar: bool
    """A native sidecar: an init container with ``restartPolicy: Always``."""

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self.pod["spec"])

    @property
    def env(self) -> dict[str, str]:
        """The image's LLMROUTER_ variables with the container's on top."""
        own = {item["name"]: item["value"] for item in self.container.get("env", [])}
        return {**image_env(), **own}

    def mounted(self, path: str) -> tuple[dict[str, Any], str]:
        """The volume a path in the container lies on, and the path inside the volume."""
        for mount in self.container.get("volumeMounts", []):
            prefix = mount["mountPath"].rstrip("/") + "/"
            if path.startswith(prefix):
                volumes = {volume["name"]: volume for volume in self.spec["volumes"]}
                return volumes[mount["name"]], path.removeprefix(prefix)
        raise AssertionError(f"{path} is on no volume of container {self.container['name']}")

    def config_file(self) -> Path:
        """The config.yaml the container's LLMROUTER_CONFIG names, in this folder."""
        volume, key = self.mounted(self.env["LLMROUTER_CONFIG"])
        return self.folder.generated[volume["configMap"]["name"]][key]


def folders() -> list[Folder]:
    """Every kustomization in deploy/."""
    return [load_folder(path.parent) for path in sorted(DEPLOY.glob("*/kustomization.yaml"))]


def load_folder(path: Path) -> Folder:
    kustomization = yaml.safe_load((path / "kustomization.yaml").read_text(encoding="utf-8"))
    resources = [
        resource
        for name in kustomization.get("resources", [])
        for resource in yaml.safe_load_all((path / name).read_text(encoding="utf-8"))
        if resource
    ]
    generated = {
        generator["name"]: dict(_generated_file(path, entry) for entry in generator["files"])
        for generator in kustomization.get("configMapGenerator", [])
    }
    return Folder(path, resources, generated)


def generated_config_maps(folder: Folder) -> list[dict[str, Any]]:
    """The ConfigMaps the folder's ``configMapGenerator`` makes (names without the hash)."""
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name},
            "data": {key: path.read_text(encoding="utf-8") for key, path in files.items()},
        }
        for name, files in folder.generated.items()
    ]


def _generated_file(folder: Path, entry: str) -> tuple[str, Path]:
    key, _, file = entry.rpartition("=")
    return key or Path(file).name, folder / file


def routers(folder: Folder) -> list[Router]:
    """The llmrouter containers of every workload in the folder."""
    found = []
    for resource in folder.resources:
        if resource["kind"] != "Deployment":
            continue
        pod = resource["spec"]["template"]
        for container in pod["spec"].get("initContainers", []):
            if _runs_llmrouter(container):
                sidecar = container.get("restartPolicy") == "Always"
                found.append(Router(folder, pod, container, sidecar=sidecar))
        found += [
            Router(folder, pod, container, sidecar=False)
            for container in pod["spec"]["containers"]
            if _runs_llmrouter(container)
        ]
    return found


def _runs_llmrouter(container: dict[str, Any]) -> bool:
    return str(container["image"]).rpartition(":")[0].rpartition("/")[2] == IMAGE


def pre_stop_seconds(container: dict[str, Any]) -> int:
    """How long a container's preStop hook sleeps (0 without one)."""
    hook = container.get("lifecycle", {}).get("preStop")
    if hook is None:
        return 0
    if "sleep" in hook:
        return int(hook["sleep"]["seconds"])
    command = hook["exec"]["command"]
    assert command[0] in ("sleep", "/bin/sleep"), f"a preStop that is not a sleep: {command}"
    return int(command[1])


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of (INSTRUCTION, arguments)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arguments = line.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append((keyword.upper(), arguments.strip()))
    return stages


def image_env() -> dict[str, str]:
    """The LLMROUTER_ variables the runtime image sets (its last stage's ENV)."""
    env = {}
    for keyword, arguments in dockerfile_stages()[-1]:
        if keyword == "ENV":
            pairs = (word.partition("=") for word in shlex.split(arguments))
            env.update({name: value for name, _, value in pairs if name.startswith("LLMROUTER_")})
    return env


def image_instruction(keyword: str) -> str:
    """The arguments of the runtime image's (last stage's) one KEYWORD instruction."""
    found = [arguments for name, arguments in dockerfile_stages()[-1] if name == keyword]
    assert len(found) == 1, f"the runtime stage has {len(found)} {keyword} instructions"
    return found[0]
