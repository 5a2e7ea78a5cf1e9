"""``deploy/k8s``: valid against the Kubernetes schemas (offline), and in agreement with the app it deploys.

No cluster and no kubectl: the base is rendered here the way kustomize would for what it uses (the resources it
lists, its ``images`` override), then each resource is checked against the JSON schemas that kubernetes-validate
ships, strictly (an unknown or misspelt field fails), for the oldest Kubernetes the contract supports and the newest
the package knows. The app side is read from the code itself: the routes of ``create_app()``, the variables
``Settings.from_env`` reads, the click commands of the CLI, the image compose builds.
"""

from __future__ import annotations

import copy
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import click
import kubernetes_validate
import pytest
from advanced_alchemy.extensions.litestar.cli import database_group
from litestar_saq.cli import build_cli_app
from ruamel.yaml import YAML

from app.config import PROJECT_ROOT, ConfigError, Settings
from app.main import create_app

BASE = PROJECT_ROOT / "deploy" / "k8s"
OLDEST_SUPPORTED = "1.30"

#: Variables the manifests may set that are not Settings: read by uvicorn, prometheus_client or the litestar CLI.
DOCUMENTED_ELSEWHERE = frozenset({"FORWARDED_ALLOW_IPS", "PROMETHEUS_MULTIPROC_DIR", "LITESTAR_APP"})

Resource = dict[str, Any]


def _load(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in YAML(typ="safe").load_all(fh) if doc is not None]


def render() -> list[Resource]:
    """The base's resources with its ``images`` override applied (what ``kubectl kustomize`` prints for it)."""
    kustomization = _load(BASE / "kustomization.yaml")[0]
    images = {entry["name"]: entry for entry in kustomization.get("images", [])}
    resources = [doc for name in kustomization["resources"] for doc in _load(BASE / name)]
    for container in _containers(resources):
        name, _, tag = container["image"].partition(":")
        override = images.get(name)
        if override is not None:
            new_name = override.get("newName", name)
            new_tag = override.get("newTag", tag)
            container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name
    return resources


def _pod_specs(resources: list[Resource]) -> Iterator[tuple[Resource, dict[str, Any]]]:
    for resource in resources:
        if resource["kind"] in {"Deployment", "Job"}:
            yield resource, resource["spec"]["template"]["spec"]


def _containers(resources: list[Resource]) -> Iterator[dict[str, Any]]:
    for _, pod in _pod_specs(resources):
        yield from pod["containers"]


def _one(resources: list[Resource], kind: str, component: str | None = None) -> Resource:
    found = [
        r
        for r in resources
        if r["kind"] == kind
        and (component is None or r["metadata"]["labels"].get("app.kubernetes.io/component") == component)
    ]
    assert len(found) == 1, f"expected one {kind} {component or ''}, found {len(found)}"
    return found[0]


def _container(resources: list[Resource], component: str) -> dict[str, Any]:
    kind = "Job" if component == "migrate" else "Deployment"
    containers: list[dict[str, Any]] = _one(resources, kind, component)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _config(resources: list[Resource]) -> dict[str, str]:
    """What the pods' environment holds: the ConfigMap's data and the Secret's values."""
    configmap = _one(resources, "ConfigMap")
    secret = _one(resources, "Secret")
    return {**configmap["data"], **secret["stringData"]}


class _RecordingEnviron(Mapping[str, str]):
    """An empty environment that notes every variable asked for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return default

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


@pytest.fixture(scope="module")
def resources() -> list[Resource]:
    return render()


def test_the_kustomization_lists_every_manifest_of_the_directory() -> None:
    listed = set(_load(BASE / "kustomization.yaml")[0]["resources"])

    assert listed == {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}


def test_the_base_holds_what_the_contract_lists(resources: list[Resource]) -> None:
    kinds = sorted(r["kind"] for r in resources)

    expected = [
        "ConfigMap",
        "Secret",
        "Job",
        "Deployment",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    ]

    assert kinds == sorted(expected)


@pytest.mark.parametrize("version", [OLDEST_SUPPORTED, kubernetes_validate.utils.latest_version()])
def test_every_resource_validates_strictly_against_the_kubernetes_schemas(
    resources: list[Resource], version: str
) -> None:
    for resource in resources:
        kubernetes_validate.validate(resource, version, strict=True)


def test_strict_validation_rejects_a_misspelt_field(resources: list[Resource]) -> None:
    broken = copy.deepcopy(_one(resources, "Deployment", "api"))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/ready"}}

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, OLDEST_SUPPORTED, strict=True)


def test_probe_paths_are_get_routes_of_the_app(resources: list[Resource]) -> None:
    app = create_app(Settings(database_url="postgresql+asyncpg://nobody@127.0.0.1/none", redis_url="redis://x/0"))
    get_routes = {route.path for route in app.routes if "GET" in getattr(route, "methods", ())}
    api = _container(resources, "api")

    assert api["livenessProbe"]["httpGet"]["path"] == "/health"
    assert api["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert {api[p]["httpGet"]["path"] for p in ("startupProbe", "livenessProbe", "readinessProbe")} <= get_routes


def test_ports_agree_from_the_api_command_to_the_service(resources: list[Resource]) -> None:
    api = _container(resources, "api")
    command = api["command"]
    listens_on = int(command[command.index("--port") + 1])
    ports = {p["name"]: p["containerPort"] for p in api["ports"]}
    service = _one(resources, "Service")

    assert command[:2] == ["uvicorn", "app.main:app"]
    assert list(ports.values()) == [listens_on]
    assert {api[p]["httpGet"]["port"] for p in ("startupProbe", "livenessProbe", "readinessProbe")} <= ports.keys()
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports.keys()
    assert service["spec"]["selector"] == _one(resources, "Deployment", "api")["spec"]["selector"]["matchLabels"]


def test_every_environment_variable_set_is_a_setting_or_documented(resources: list[Resource]) -> None:
    environ = _RecordingEnviron()
    Settings.from_env(environ)
    set_by_manifests = set(_config(resources))
    for container in _containers(resources):
        set_by_manifests |= {e["name"] for e in container.get("env", [])}
        assert {s.get("configMapRef", s.get("secretRef"))["name"] for s in container["envFrom"]} == {
            _one(resources, "ConfigMap")["metadata"]["name"],
            _one(resources, "Secret")["metadata"]["name"],
        }

    assert set_by_manifests - environ.asked - DOCUMENTED_ELSEWHERE == set()


def test_the_configmap_parses_and_the_placeholder_secret_is_refused(resources: list[Resource]) -> None:
    config = _config(resources)
    filled_in = Settings.from_env({**config, "JWT_SECRET": "k8s-test-" + "0123456789abcdef" * 3})

    with pytest.raises(ConfigError) as refused:
        Settings.from_env(config)

    assert refused.value.variable == "JWT_SECRET"
    assert filled_in.is_production


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = _load(PROJECT_ROOT / "compose.yaml")[0]
    return document


def _resolve(argv: list[str]) -> click.Command:
    """The click command ``argv`` runs, with every option it passes known to that command."""
    assert argv[0] == "litestar"
    groups: dict[str, click.Group] = {"database": database_group, "workers": build_cli_app()}
    command = groups[argv[1]].commands[argv[2]]
    options = {opt for param in command.params for opt in getattr(param, "opts", ())}
    assert {arg for arg in argv[3:] if arg.startswith("--")} <= options
    return command


def test_the_migration_job_and_the_worker_run_the_real_cli_commands(resources: list[Resource]) -> None:
    services = _compose()["services"]
    migrate = _container(resources, "migrate")["command"]
    worker = _container(resources, "worker")["command"]

    assert migrate == services["migrate"]["command"] == shlex.split("litestar database upgrade --no-prompt")
    assert worker == services["worker"]["command"] == shlex.split("litestar workers run")
    assert _resolve(migrate).name == "upgrade"
    assert _resolve(worker).name == "run"


def test_every_container_runs_the_image_compose_builds(resources: list[Resource]) -> None:
    services = _compose()["services"]
    compose_images = {services[name]["image"] for name in ("migrate", "api", "worker")}

    assert {c["image"] for c in _containers(resources)} == compose_images == {"orders-service:local"}


def test_shutdown_timings_fit_the_drain_and_the_worker_grace(resources: list[Resource]) -> None:
    config = Settings.from_env({**_config(resources), "JWT_SECRET": "k8s-test-" + "0123456789abcdef" * 3})
    api_pod = _one(resources, "Deployment", "api")["spec"]["template"]["spec"]
    worker_pod = _one(resources, "Deployment", "worker")["spec"]["template"]["spec"]
    api = api_pod["containers"][0]
    pre_stop = api["lifecycle"]["preStop"]["sleep"]["seconds"]
    readiness = api["readinessProbe"]

    # Out of rotation before the drain ends; 10 s or more left for requests in flight after it.
    assert readiness["periodSeconds"] * readiness["failureThreshold"] <= config.shutdown_drain_seconds
    assert api_pod["terminationGracePeriodSeconds"] >= pre_stop + config.shutdown_drain_seconds + 10
    assert worker_pod["terminationGracePeriodSeconds"] >= config.worker_shutdown_grace_seconds + 5


def test_pods_run_as_non_root_on_a_read_only_root_filesystem_with_requests_and_limits(
    resources: list[Resource],
) -> None:
    for resource, pod in _pod_specs(resources):
        writable = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
        assert pod["securityContext"]["runAsNonRoot"] is True, resource["metadata"]["name"]
        assert pod["securityContext"]["runAsUser"] == 10001  # the Containerfile's USER
        for container in pod["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
            assert {"cpu", "memory"} <= container["resources"]["limits"].keys()
            assert {(m["mountPath"], m["name"] in writable) for m in container["volumeMounts"]} == {("/tmp", True)}


def test_the_disruption_budget_and_the_autoscaler_target_the_api(resources: list[Resource]) -> None:
    api = _one(resources, "Deployment", "api")
    pdb = _one(resources, "PodDisruptionBudget")
    hpa = _one(resources, "HorizontalPodAutoscaler")

    assert pdb["spec"]["selector"] == api["spec"]["selector"]
    assert (hpa["spec"]["scaleTargetRef"]["kind"], hpa["spec"]["scaleTargetRef"]["name"]) == (
        "Deployment",
        api["metadata"]["name"],
    )
    assert hpa["spec"]["minReplicas"] >= 2  # with maxUnavailable 1 in the budget, a drain never empties the API
