"""The deployment files agree with each other and with the documented configuration.

No Docker engine runs here, so these tests read docker-compose.yml, the
Dockerfile and the HAProxy config and check what ``docker compose up`` relies
on: the services and their health checks, the environment each node gets (and
that :class:`Settings` accepts it), distinct node ids, and ports that line up
from the Dockerfile through the nodes to the load balancer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import shlex
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from collab.cli import build_parser
from collab.config import ConfigError, Settings
from tests.services import free_port
from tests.support.nodes import RunningNode, running_node

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
HAPROXY = ROOT / "deploy" / "haproxy.cfg"
DOCKERIGNORE = ROOT / ".dockerignore"

APP_NODES = ("node1", "node2")
APP_PORT = 8080
# The documented variables (docs/configuration.md) every node must set explicitly.
NODE_VARIABLES = {
    "COLLAB_DATABASE_URL",
    "COLLAB_REDIS_URL",
    "COLLAB_JWT_SECRET",
    "COLLAB_NODE_ID",
    "COLLAB_HOST",
    "COLLAB_PORT",
}
# Values for the ${VAR...} references, as a user's shell or .env would give them.
USER_ENV = {"COLLAB_JWT_SECRET": "s" * 48, "POSTGRES_PASSWORD": "pw"}
_INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def interpolate(value: str, env: dict[str, str]) -> str:
    """Resolve ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` as compose does."""

    def replace(match: re.Match[str]) -> str:
        name, op, arg = match[1], match[2], match[3]
        if name in env and (env[name] or not (op or "").startswith(":")):
            return env[name]
        if op in (":-", "-"):
            return arg
        if op in (":?", "?"):
            raise KeyError(f"{name} is required: {arg}")
        return ""

    return _INTERPOLATION.sub(replace, value)


def environment(service: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, str]:
    raw = service.get("environment", {})
    assert isinstance(raw, dict), "use the mapping form of `environment`"
    return {k: interpolate(str(v), USER_ENV if env is None else env) for k, v in raw.items()}


def known_variables() -> set[str]:
    """Every COLLAB_* name in the server's packages, plus the documented fallbacks."""
    names = {"DATABASE_URL", "REDIS_URL"}
    for package in ("collab", "auth", "eventstore", "executor"):
        for source in (ROOT / package).rglob("*.py"):
            names |= set(re.findall(r"\bCOLLAB_[A-Z0-9_]+\b", source.read_text(encoding="utf-8")))
    return names


def command_of(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(str(t) for t in test)


def depends_conditions(service: dict[str, Any]) -> dict[str, str]:
    depends = service.get("depends_on", {})
    assert isinstance(depends, dict), "use the long form of depends_on, with conditions"
    return {name: spec["condition"] for name, spec in depends.items()}


# --- compose -----------------------------------------------------------------


def test_compose_has_the_topology(services: dict[str, dict[str, Any]]) -> None:
    assert {"postgres", "redis", "migrate", *APP_NODES, "worker", "lb"} <= services.keys()


def test_postgres_and_redis_have_health_checks(services: dict[str, dict[str, Any]]) -> None:
    postgres, redis = services["postgres"], services["redis"]
    assert postgres["image"].split(":")[1].startswith("15")
    assert "pg_isready" in healthcheck_text(postgres)
    assert redis["image"].split(":")[1].startswith("7")
    assert "redis-cli ping" in healthcheck_text(redis)


@pytest.mark.parametrize("name", APP_NODES)
def test_node_environment_matches_the_documentation(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    env = environment(services[name])
    assert NODE_VARIABLES.issubset(env)
    unknown = env.keys() - known_variables()
    assert not unknown, f"{name} sets variables collab does not read: {sorted(unknown)}"
    assert env["COLLAB_DATABASE_URL"].startswith("postgresql://")
    assert "@postgres:5432/" in env["COLLAB_DATABASE_URL"]
    assert env["COLLAB_REDIS_URL"].startswith("redis://redis:6379")
    assert env["COLLAB_HOST"] == "0.0.0.0"
    assert env["COLLAB_PORT"] == str(APP_PORT)
    assert env["COLLAB_NODE_ID"] == name


@pytest.mark.parametrize("name", [*APP_NODES, "worker", "migrate"])
def test_settings_accept_the_environment(services: dict[str, dict[str, Any]], name: str) -> None:
    settings = Settings.from_env(environment(services[name]))
    assert settings.is_postgres
    assert settings.redis_url is not None
    assert settings.jwt_secret == USER_ENV["COLLAB_JWT_SECRET"]


def test_jwt_secret_comes_from_the_user_and_is_shared(services: dict[str, dict[str, Any]]) -> None:
    # A token issued by one node must verify on the other: one secret, never a
    # per-container random one, and compose refuses to start without it.
    raw = {str(services[n]["environment"]["COLLAB_JWT_SECRET"]) for n in (*APP_NODES, "worker")}
    assert len(raw) == 1
    (reference,) = raw
    assert reference.startswith("${COLLAB_JWT_SECRET:?")
    with pytest.raises(KeyError, match="COLLAB_JWT_SECRET"):
        interpolate(reference, {})


def test_node_ids_are_distinct(services: dict[str, dict[str, Any]]) -> None:
    ids = [environment(services[n])["COLLAB_NODE_ID"] for n in (*APP_NODES, "worker")]
    assert len(ids) == len(set(ids)), ids


def test_redis_needs_the_postgres_database(
    services: dict[str, dict[str, Any]],
) -> None:
    env = environment(services["node1"])
    env["COLLAB_DATABASE_URL"] = "sqlite:///./data/collab.db"
    with pytest.raises(ConfigError, match="PostgreSQL"):
        Settings.from_env(env)


@pytest.mark.parametrize("name", APP_NODES)
def test_nodes_serve_health_check_and_wait_for_dependencies(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    node = services[name]
    assert command_of(node)[:2] == ["collab", "serve"]
    assert f"127.0.0.1:{APP_PORT}/readyz" in healthcheck_text(node)
    assert node["build"] == "." or node["build"]["context"] == "."
    assert "ports" not in node, "nodes are reached through the load balancer only"
    assert depends_conditions(node) == {
        "postgres": "service_healthy",
        "redis": "service_healthy",
        "migrate": "service_completed_successfully",
    }


def test_commands_exist_in_the_cli(services: dict[str, dict[str, Any]]) -> None:
    parser = build_parser()
    for name in (*APP_NODES, "worker", "migrate"):
        parser.parse_args(command_of(services[name])[1:])  # SystemExit if unknown


def test_worker_runs_jobs_with_a_sandbox(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    assert command_of(worker)[:2] == ["collab", "worker"]
    env = environment(worker)
    assert env["COLLAB_DATABASE_URL"] == environment(services["node1"])["COLLAB_DATABASE_URL"]
    assert env["COLLAB_REDIS_URL"] == environment(services["node1"])["COLLAB_REDIS_URL"]
    assert depends_conditions(worker)["redis"] == "service_healthy"
    assert depends_conditions(worker)["postgres"] == "service_healthy"
    # bubblewrap needs user namespaces, which Docker's default seccomp profile denies.
    assert "seccomp=unconfined" in worker.get("security_opt", [])


def test_load_balancer_publishes_the_port_and_mounts_its_config(
    services: dict[str, dict[str, Any]],
) -> None:
    lb = services["lb"]
    assert lb["image"].startswith("haproxy:")
    assert f"{APP_PORT}:{APP_PORT}" in [str(p) for p in lb["ports"]]
    mounts = [str(v).split(":") for v in lb["volumes"]]
    assert ["./deploy/haproxy.cfg", "/usr/local/etc/haproxy/haproxy.cfg", "ro"] in mounts
    assert set(APP_NODES) <= set(lb["depends_on"])


# --- HAProxy -----------------------------------------------------------------


def haproxy_sections() -> dict[str, list[str]]:
    """``"backend collab_api"`` -> its directive lines, comments stripped."""
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for raw in HAPROXY.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if not line[0].isspace():
            current = sections.setdefault(" ".join(line.split()), [])
        else:
            current.append(" ".join(line.split()))
    return sections


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", value)
    assert match, f"not an HAProxy time: {value!r}"
    unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2] or "ms"]
    return int(match[1]) * unit


def test_haproxy_listens_on_the_published_port() -> None:
    frontend = haproxy_sections()["frontend http"]
    assert f"bind :{APP_PORT}" in frontend


def test_haproxy_checks_readiness_of_every_node() -> None:
    sections = haproxy_sections()
    backends = {k: v for k, v in sections.items() if k.startswith("backend ")}
    assert backends
    for name, lines in backends.items():
        assert "option httpchk GET /readyz" in lines, name
        assert "http-check expect status 200" in lines, name
        defaults = next((ln for ln in lines if ln.startswith("default-server ")), "")
        servers = [ln.split() for ln in lines if ln.startswith("server ")]
        assert sorted(s[1] for s in servers) == sorted(APP_NODES), name
        for server in servers:
            assert server[2] == f"{server[1]}:{APP_PORT}", server
            assert "check" in server[3:] or " check " in f" {defaults} ", server


def test_haproxy_routes_websockets_with_long_timeouts() -> None:
    sections = haproxy_sections()
    frontend = sections["frontend http"]
    assert any(ln.startswith("acl ") and "path_beg /ws/" in ln for ln in frontend)
    stream_rule = next(ln for ln in frontend if ln.startswith("use_backend "))
    stream_backend = sections[f"backend {stream_rule.split()[1]}"]
    timeouts = {
        " ".join(ln.split()[:2]): seconds(ln.split()[2])
        for ln in sections["defaults"] + stream_backend
        if ln.startswith("timeout ")
    }
    # An idle but open WebSocket must survive far longer than one REST call.
    assert timeouts["timeout tunnel"] >= 3600
    assert timeouts["timeout client"] >= 3600
    assert timeouts["timeout server"] >= 3600  # the stream backend's own value wins
    assert sections["defaults"][0] == "mode http"  # HTTP mode handles the Upgrade


# --- Dockerfile ----------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    result = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def test_dockerfile_builds_a_non_root_server_image() -> None:
    instructions = dockerfile_instructions()
    values = {k: [v for kk, v in instructions if kk == k] for k, _ in instructions}
    assert values["FROM"][0].startswith("python:3.11-slim")
    assert values["USER"][-1] not in ("root", "0")
    assert str(APP_PORT) in values["EXPOSE"][-1].split()
    assert "/healthz" in values["HEALTHCHECK"][-1]
    cmd = yaml.safe_load(values["CMD"][-1])  # the exec (JSON) form
    assert cmd[:2] == ["collab", "serve"]
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    runs = " ".join(values["RUN"])
    assert "bubblewrap" in runs, "the worker's sandbox needs bwrap in the image"
    assert "pip install" in runs


def test_dockerfile_default_port_matches_compose(services: dict[str, dict[str, Any]]) -> None:
    envs = " ".join(v for k, v in dockerfile_instructions() if k == "ENV")
    assert f"COLLAB_PORT={APP_PORT}" in envs
    assert "COLLAB_HOST=0.0.0.0" in envs


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    patterns = {
        ln.strip() for ln in DOCKERIGNORE.read_text(encoding="utf-8").splitlines() if ln.strip()
    }
    assert {".git", ".venv", ".env", "data", "**/node_modules"} <= patterns


# --- HAProxy for real, where it is installed --------------------------------------


def render_haproxy(lb_port: int, nodes: dict[str, int]) -> str:
    """deploy/haproxy.cfg with the compose names and ports swapped for local ones."""
    text = HAPROXY.read_text(encoding="utf-8")
    text = text.replace(f"bind :{APP_PORT}", f"bind 127.0.0.1:{lb_port}")
    for name, port in nodes.items():
        text = text.replace(f"server {name} {name}:{APP_PORT}", f"server {name} 127.0.0.1:{port}")
    # Docker's DNS does not exist here; the servers are plain addresses now.
    text = text.replace(" resolvers docker", "")
    return re.sub(r"(?m)^resolvers docker\n(?:[ \t]+.*\n)*", "", text)


def test_rendered_haproxy_config_keeps_everything_but_addresses() -> None:
    rendered = render_haproxy(18080, {"node1": 18081, "node2": 18082})
    assert "bind 127.0.0.1:18080" in rendered
    assert "server node1 127.0.0.1:18081" in rendered
    assert "resolvers" not in rendered
    assert "timeout tunnel 1h" in rendered
    assert rendered.count("option httpchk GET /readyz") == 2


@dataclasses.dataclass
class Balanced:
    url: str
    nodes: list[RunningNode]
    log: Path


@pytest.fixture
async def haproxy_in_front(tmp_path: Path) -> AsyncIterator[Balanced]:
    """Two real nodes behind HAProxy running deploy/haproxy.cfg; skipped without haproxy."""
    binary = shutil.which("haproxy")
    if binary is None:
        pytest.skip("haproxy is not installed (Debian: haproxy; .ci/run installs it)")
    env = {"COLLAB_JWT_SECRET": "s" * 48}
    async with contextlib.AsyncExitStack() as stack:
        nodes = [
            await stack.enter_async_context(
                running_node(env, node_id=name, workdir=tmp_path / name)
            )
            for name in APP_NODES
        ]
        lb_port = free_port()
        config = tmp_path / "haproxy.cfg"
        config.write_text(
            render_haproxy(lb_port, {n.node_id or "": n.port for n in nodes}), encoding="utf-8"
        )
        lb = _start_haproxy(binary, config, tmp_path / "haproxy.log")
        try:
            url = f"http://127.0.0.1:{lb_port}"
            await _wait_for(url + "/healthz", 200)
            yield Balanced(url, nodes, tmp_path / "haproxy.log")
        finally:
            lb.terminate()
            lb.wait(timeout=10)


def _start_haproxy(binary: str, config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    check = subprocess.run(
        [binary, "-c", "-q", "-f", str(config)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stderr
    with log_path.open("wb") as log:
        return subprocess.Popen([binary, "-db", "-f", str(config)], stdout=log, stderr=log)


async def _wait_for(url: str, status: int) -> None:
    last: object = None
    try:
        async with asyncio.timeout(15), aiohttp.ClientSession() as http:
            while True:
                try:
                    async with http.get(url) as response:
                        last = response.status
                except aiohttp.ClientError as exc:
                    last = exc
                if last == status:
                    return
                await asyncio.sleep(0.2)
    except TimeoutError:
        pytest.fail(f"{url} did not answer {status} within 15 s (last: {last!r})")


@pytest.mark.slow
async def test_haproxy_upgrades_websockets(haproxy_in_front: Balanced) -> None:
    url = haproxy_in_front.url
    async with aiohttp.ClientSession() as http:
        # No token: the server completes the upgrade, then closes with 4401. Getting
        # that close code proves the Upgrade went through the balancer.
        async with http.ws_connect(url + "/ws/some-document") as ws:
            message = await ws.receive(timeout=10)
        assert message.type is aiohttp.WSMsgType.CLOSE
        assert message.data == 4401


@pytest.mark.slow
async def test_haproxy_takes_a_dead_node_out(haproxy_in_front: Balanced) -> None:
    balanced = haproxy_in_front
    balanced.nodes[0].kill()
    async with aiohttp.ClientSession() as http:
        # Requests keep succeeding throughout (redispatch covers the detection window)...
        for _ in range(40):
            async with http.get(balanced.url + "/readyz") as response:
                assert response.status == 200
            await asyncio.sleep(0.2)
    # ...and the health checks have taken the dead node out of both backends.
    log = balanced.log.read_text(encoding="utf-8", errors="replace")
    assert "collab_api/node1 is DOWN" in log, log
    assert "collab_stream/node1 is DOWN" in log, log
    assert "node2 is DOWN" not in log, log
