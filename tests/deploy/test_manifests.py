"""deploy/: the Kubernetes manifests agree with the schemas, the server and the image.

Every resource validates offline and strictly (no unknown field) against the schemas
kubernetes-validate bundles, for the oldest Kubernetes the manifests are for and the
newest it knows. Each llmrouter container's configuration, as the container would run
it (the image's environment, the container's, the mounted config.yaml), passes the
server's own validation, and its probes, ports, scrape annotations, termination grace,
Secrets and security context agree with it. Last, a server started that way answers
each probe.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import kubernetes_validate
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from llmrouter_server.app import _FLUSH_SECONDS, SERVICE_NAME
from llmrouter_server.config import Config, load_config
from llmrouter_server.transport import exposure_warning
from tests.backends.upstream import free_port
from tests.cli.process import run_cli
from tests.deploy.manifests import (
    Folder,
    Router,
    folders,
    generated_config_maps,
    image_instruction,
    is_loopback,
    pre_stop_seconds,
    routers,
)
from tests.serve_process import llmrouter_process

MIN_KUBERNETES = "1.30"
"""The oldest Kubernetes the manifests are for: native sidecars are on by default from
1.29, the preStop ``sleep`` action from 1.30."""

FOLDERS = folders()
ROUTERS = [router for folder in FOLDERS for router in routers(folder)]

PROBES = {"startupProbe": "", "livenessProbe": "", "readinessProbe": SERVICE_NAME}
"""Each probe and the health service it checks: the server as a whole for starting and
liveness, the RouterService for taking calls. Both are what the server registers."""

SECRET_SAMPLES = {
    "api_keys.yaml": yaml.safe_dump([{"id": "ci", "sha256": "0" * 64, "tenant": "ci"}]),
    "openai": "sk-not-a-real-key\n",
}
"""What a Secret file the configurations read holds, by its key: made up, never used."""


def _folder_id(folder: Folder) -> str:
    return folder.name


def _router_id(router: Router) -> str:
    return f"{router.folder.name}-{router.container['name']}"


by_folder = pytest.mark.parametrize("folder", FOLDERS, ids=_folder_id)
by_router = pytest.mark.parametrize("router", ROUTERS, ids=_router_id)


@pytest.fixture
def config_of(monkeypatch: pytest.MonkeyPatch) -> Callable[[Router], Config]:
    """Loads a container's configuration with its environment and nothing else's."""

    def load(router: Router) -> Config:
        for name in os.environ:
            if name.startswith("LLMROUTER_"):
                monkeypatch.delenv(name)
        for name, value in router.env.items():
            monkeypatch.setenv(name, value)
        return load_config(router.config_file())

    return load


def test_both_variants_are_there() -> None:
    variants = {folder.name: [r.sidecar for r in routers(folder)] for folder in FOLDERS}

    assert variants == {"deployment": [False], "sidecar": [True]}


@by_folder
@pytest.mark.parametrize("version", [MIN_KUBERNETES, kubernetes_validate.latest_version()])
def test_every_resource_validates_strictly(folder: Folder, version: str) -> None:
    for resource in [*folder.resources, *generated_config_maps(folder)]:
        kubernetes_validate.validate(resource, version, strict=True)


def test_strict_validation_refuses_an_unknown_field() -> None:
    deployment = next(r for r in FOLDERS[0].resources if r["kind"] == "Deployment")
    misspelt = {**deployment, "spec": {**deployment["spec"], "replica": 2}}

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, MIN_KUBERNETES, strict=True)


@by_router
def test_configuration_is_valid_and_open_only_on_loopback(
    router: Router, config_of: Callable[[Router], Config]
) -> None:
    config = config_of(router)

    assert exposure_warning(config, config.server.port) is None
    assert (config.auth is None) == is_loopback(config.server.host)


@by_router
def test_probes_check_what_the_server_registers(
    router: Router, config_of: Callable[[Router], Config]
) -> None:
    config = config_of(router)

    for name, service in PROBES.items():
        probe = router.container[name]
        if is_loopback(config.server.host):
            # The kubelet's gRPC probe dials the Pod's IP, where nothing listens.
            assert "grpc" not in probe
            assert _exec_check(probe) == (f"127.0.0.1:{config.server.port}", service)
        else:
            assert probe["grpc"] == {"port": config.server.port, "service": service}


@by_router
def test_ports_are_the_configured_ones(
    router: Router, config_of: Callable[[Router], Config]
) -> None:
    config = config_of(router)
    ports = {port["name"]: port["containerPort"] for port in router.container.get("ports", [])}

    wanted = {}
    if not is_loopback(config.server.host):
        wanted["grpc"] = config.server.port
    if not is_loopback(config.telemetry.metrics_host or config.server.host):
        wanted["metrics"] = config.telemetry.metrics_port
    assert ports == wanted


@by_router
def test_prometheus_scrapes_the_metrics_port(
    router: Router, config_of: Callable[[Router], Config]
) -> None:
    config = config_of(router)
    annotations = router.pod["metadata"].get("annotations", {})
    scrape = {key: value for key, value in annotations.items() if key.startswith("prometheus.io/")}

    if is_loopback(config.telemetry.metrics_host or config.server.host):
        assert scrape == {}  # /metrics listens on the loopback
    else:
        assert scrape == {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(config.telemetry.metrics_port),
            "prometheus.io/path": "/metrics",
        }


@by_router
def test_termination_grace_covers_the_shutdown(
    router: Router, config_of: Callable[[Router], Config]
) -> None:
    config = config_of(router)
    # A native sidecar gets SIGTERM only once the Pod's other containers have stopped.
    before = max(map(pre_stop_seconds, router.spec["containers"])) if router.sidecar else 0
    shutdown = pre_stop_seconds(router.container) + config.server.grace_period_seconds
    # The server lets calls send their final status for _FLUSH_SECONDS, then exits: 1 s more.
    needed = before + shutdown + _FLUSH_SECONDS + 1

    assert router.spec["terminationGracePeriodSeconds"] >= needed


@by_router
def test_files_the_configuration_reads_are_on_secrets(
    router: Router, config_of: Callable[[Router], Config]
) -> None:
    paths = _secret_paths(config_of(router))

    assert paths
    for path in paths:
        volume, key = router.mounted(path)
        assert "secret" in volume, f"{path} is not on a Secret"
        assert key in SECRET_SAMPLES


@by_router
def test_runs_as_the_images_user_and_writes_nothing(router: Router) -> None:
    uid, _, gid = image_instruction("USER").partition(":")
    pod = router.spec["securityContext"]
    own = router.container["securityContext"]
    tmp, _ = router.mounted("/tmp/any")  # noqa: S108 - the container's /tmp, not one made here

    assert (pod["runAsNonRoot"], own["runAsUser"], own["runAsGroup"]) == (True, int(uid), int(gid))
    assert pod["fsGroup"] == int(gid)  # the Secret files' group
    assert own["readOnlyRootFilesystem"] is True
    assert own["allowPrivilegeEscalation"] is False
    assert own["capabilities"] == {"drop": ["ALL"]}
    assert "emptyDir" in tmp


@pytest.mark.parametrize("router", [r for r in ROUTERS if not r.sidecar], ids=_router_id)
def test_a_standalone_router_has_a_service_and_a_disruption_budget(router: Router) -> None:
    labels = router.pod["metadata"]["labels"]
    kinds = {(r["kind"], r["metadata"]["name"]): r for r in router.folder.resources}
    service = next(r for (kind, _), r in kinds.items() if kind == "Service")
    budget = next(r for (kind, _), r in kinds.items() if kind == "PodDisruptionBudget")
    port_names = {port["name"] for port in router.container["ports"]}

    assert service["spec"]["selector"].items() <= labels.items()
    assert {port["targetPort"] for port in service["spec"]["ports"]} == {"grpc"} <= port_names
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()


@by_router
@pytest.mark.timeout(120)
def test_a_server_run_as_the_container_would_answers_every_probe(
    router: Router, tmp_path: Path
) -> None:
    settings = _as_the_container_would(router, tmp_path)

    with llmrouter_process(**settings) as (address, _):
        for name in PROBES:
            probe = router.container[name]
            if "grpc" in probe:
                service = probe["grpc"].get("service", "")
                assert _grpc_check(address, service) == health_pb2.HealthCheckResponse.SERVING
            else:
                probe_address, _ = _exec_check(probe)
                command = probe["exec"]["command"][1:]
                args = [address if arg == probe_address else arg for arg in command]
                result = run_cli(*args)
                assert result.returncode == 0, result.stderr


def _exec_check(probe: dict[str, Any]) -> tuple[str, str]:
    """The address and service of an exec probe running ``llmrouter health``."""
    command = probe["exec"]["command"]
    assert command[:2] == ["llmrouter", "health"], command
    options = dict(zip(command[2::2], command[3::2], strict=True))
    assert options.keys() <= {"--address", "--service"}, command
    return options["--address"], options.get("--service", "")


def _grpc_check(address: str, service: str) -> int:
    """What the kubelet's gRPC probe asks: a Check with no credentials."""
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def _secret_paths(config: Config) -> list[str]:
    paths = [config.auth.api_keys_file] if config.auth and config.auth.api_keys_file else []
    paths += [getattr(backend, "api_key_file", None) for backend in config.backends.values()]
    if config.tls is not None:
        paths += [config.tls.cert_file, config.tls.key_file, config.tls.client_ca_file]
    return [str(path) for path in paths if path is not None]


def _as_the_container_would(router: Router, root: Path) -> dict[str, str]:
    """The container's environment for a server on loopback, its volumes under ``root``.

    config.yaml and the Secret files (made-up samples) are laid out as the volumes
    mount them; the host and port are the test's loopback ones, and so is the metrics port.
    """
    mounts = {m["mountPath"]: root / m["name"] for m in router.container["volumeMounts"]}

    def relocate(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: relocate(item) for key, item in value.items()}
        if isinstance(value, list):
            return [relocate(item) for item in value]
        for mount, folder in mounts.items():
            if isinstance(value, str) and value.startswith(mount + "/"):
                return str(folder / value.removeprefix(mount + "/"))
        return value

    config_path = Path(relocate(router.env["LLMROUTER_CONFIG"]))
    config = relocate(yaml.safe_load(router.config_file().read_text(encoding="utf-8")))
    for path in _secret_paths(Config(**config)):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(SECRET_SAMPLES[Path(path).name], encoding="utf-8")
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    listen = (
        "LLMROUTER_SERVER__HOST",
        "LLMROUTER_SERVER__PORT",
        "LLMROUTER_TELEMETRY__METRICS_HOST",
    )
    env = {name: value for name, value in router.env.items() if name not in listen}
    return {
        **env,
        "LLMROUTER_CONFIG": str(config_path),
        "LLMROUTER_TELEMETRY__METRICS_PORT": str(free_port()),
    }
