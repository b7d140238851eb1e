"""The Docker deployment files, checked without Docker.

docker-compose.infrastructure.yml + docker-compose.services.yml (merged as
``docker compose -f ... -f ... up`` merges them), the service's Dockerfile and the root
.dockerignore: that they are consistent with each other, with the service's Settings, its
entry point, and common_core's topic list.
"""

from __future__ import annotations

import inspect
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from common_core.events.topics import ALL_TOPICS

from services.class_management_service import topic_setup
from services.class_management_service.__main__ import main as cms_main
from services.class_management_service.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[4]
INFRA_FILE = REPO_ROOT / "docker-compose.infrastructure.yml"
SERVICES_FILE = REPO_ROOT / "docker-compose.services.yml"
DOCKERFILE = REPO_ROOT / "services" / "class_management_service" / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
SERVICE_PYPROJECT = REPO_ROOT / "services" / "class_management_service" / "pyproject.toml"

NETWORK = "huleedu_internal_network"
ENV_PREFIX = "CLASS_MANAGEMENT_SERVICE_"
ENTRY = ["python", "-m", "services.class_management_service"]
SERVICE = "class_management_service"  # the API; its relay is off
RELAY = "class_management_relay"  # the outbox relay, in a process of its own
MIGRATE = "class_management_migrate"
TOPIC_SETUP = "kafka_topic_setup"
DB = "class_management_db"
ONE_SHOTS = (MIGRATE, TOPIC_SETUP)
LONG_RUNNING = (SERVICE, RELAY)
CMS_IMAGE_SERVICES = (SERVICE, RELAY, MIGRATE, TOPIC_SETUP)
#: Settings with no default that is right inside a container (the defaults point at 127.0.0.1).
CONTAINER_REQUIRED = ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL")
DEPENDS_ON_CONDITIONS = {
    "service_started",
    "service_healthy",
    "service_completed_successfully",
}


# --- compose helpers -------------------------------------------------------------------------


def _load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name} is not a YAML mapping"
    return data


@cache
def _files() -> tuple[dict[str, Any], dict[str, Any]]:
    return _load_yaml(INFRA_FILE), _load_yaml(SERVICES_FILE)


@cache
def _merged() -> dict[str, Any]:
    """The two files merged as compose does it, for the disjoint sets of services they hold."""
    infra, services = _files()
    overlap = set(infra.get("services") or {}) & set(services.get("services") or {})
    assert not overlap, f"services defined in both files: {sorted(overlap)}"
    return {
        "services": {**(infra.get("services") or {}), **(services.get("services") or {})},
        "networks": {**(infra.get("networks") or {}), **(services.get("networks") or {})},
        "volumes": {**(infra.get("volumes") or {}), **(services.get("volumes") or {})},
    }


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _merged()["services"]
    return services


_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:(?P<op>:?[-?])(?P<default>[^}]*))?\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


def _interpolate(value: Any, env: Mapping[str, str] | None = None) -> Any:
    """Compose's ``${VAR:-default}`` / ``${VAR-default}`` / ``$VAR`` / ``$$`` substitution."""
    if not isinstance(value, str):
        return value
    env = env or {}

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["plain"]
        op, default = match["op"], match["default"] or ""
        if op == ":-":
            return env.get(name) or default
        if op == "-":
            return env.get(name, default)
        if op in (":?", "?"):
            assert name in env, f"${{{name}}} is required ({default})"
        return env.get(name, "")

    return _VARIABLE.sub(substitute, value)


def _environment(
    service: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {key: str(_interpolate(value, env)) for key, value in raw.items()}


def _depends_on(service: Mapping[str, Any]) -> dict[str, str]:
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}


def _names(raw: Any) -> list[str]:
    """Names from a compose list-or-mapping field (networks)."""
    if not raw:
        return []
    return list(raw) if isinstance(raw, dict) else [str(item) for item in raw]


@dataclass(frozen=True)
class _Port:
    host_ip: str
    published: int
    target: int
    protocol: str


def _ports(service: Mapping[str, Any]) -> list[_Port]:
    ports: list[_Port] = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            if entry.get("published") is None:
                continue
            ports.append(
                _Port(
                    str(entry.get("host_ip", "")),
                    int(entry["published"]),
                    int(entry["target"]),
                    str(entry.get("protocol", "tcp")),
                )
            )
            continue
        spec, _, protocol = str(entry).partition("/")
        parts = spec.rsplit(":", 2)
        if len(parts) == 1:
            continue  # container port only: Docker picks a random host port
        host_ip = parts[0] if len(parts) == 3 else ""
        ports.append(_Port(host_ip, int(parts[-2]), int(parts[-1]), protocol or "tcp"))
    return ports


def _command(service: Mapping[str, Any]) -> list[str]:
    command = service.get("command")
    assert isinstance(command, list), "commands are given in exec (list) form"
    return [str(part) for part in command]


# --- Dockerfile / .dockerignore helpers ------------------------------------------------------


@dataclass
class _Instruction:
    keyword: str
    args: str
    line: int

    @property
    def json_args(self) -> list[str] | None:
        text = self.args.strip()
        if not text.startswith("["):
            return None
        parsed = json.loads(text)
        assert isinstance(parsed, list)
        return [str(part) for part in parsed]

    def flags_and_rest(self) -> tuple[list[str], str]:
        flags: list[str] = []
        rest = self.args.strip()
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            flags.append(flag)
            rest = rest.strip()
        return flags, rest


@dataclass
class _Stage:
    base: str
    name: str | None
    instructions: list[_Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[_Instruction]:
        return [ins for ins in self.instructions if ins.keyword == keyword]


def _dockerfile_instructions(text: str) -> Iterator[_Instruction]:
    """Instructions with line continuations joined and comment lines dropped."""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # comment lines inside a continuation are ignored
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        joined = " ".join(part for part in pending if part)
        pending = []
        keyword, _, args = joined.partition(" ")
        yield _Instruction(keyword.upper(), args.strip(), start)
    assert not pending, "Dockerfile ends inside a line continuation"


@cache
def _dockerfile() -> tuple[dict[str, str], list[_Stage]]:
    """(global ARG defaults, stages) of the service's Dockerfile."""
    global_args: dict[str, str] = {}
    stages: list[_Stage] = []
    for ins in _dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if ins.keyword == "FROM":
            words = ins.args.split()
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m[1], m[0]), words[0])
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(_Stage(base, name))
        elif not stages:
            if ins.keyword == "ARG":
                key, _, default = ins.args.partition("=")
                global_args[key.strip()] = default.strip()
        else:
            stages[-1].instructions.append(ins)
    return global_args, stages


def _final_stage() -> _Stage:
    return _dockerfile()[1][-1]


def _builder_stage() -> _Stage:
    stages = _dockerfile()[1]
    assert len(stages) >= 2, "the Dockerfile is multi-stage"
    return stages[0]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus ``**``) as a regex on /-paths."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**", index):
            index += 2
            if pattern.startswith("/", index):
                index += 1
                out.append("(?:.*/)?")
            else:
                out.append(".*")
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.index("]", index + 1)
            body = pattern[index + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            index = end
        else:
            out.append(re.escape(char))
        index += 1
    return re.compile("^" + "".join(out) + "$")


@cache
def _dockerignore_rules() -> tuple[tuple[re.Pattern[str], bool], ...]:
    rules: list[tuple[re.Pattern[str], bool]] = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line[1:].strip() if negated else line
        pattern = pattern.strip("/")
        rules.append((_pattern_regex(pattern), negated))
    return tuple(rules)


def _ignored(path: str) -> bool:
    """Whether Docker leaves ``path`` (relative to the context) out of the build context.

    A path is out when it or one of its parent folders matches; the last matching rule
    wins, so a later ``!pattern`` brings a path back.
    """
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: end + 1]) for end in range(len(parts))]
    ignored = False
    for regex, negated in _dockerignore_rules():
        if any(regex.match(candidate) for candidate in candidates):
            ignored = not negated
    return ignored


def _settings_port_default() -> int:
    default = Settings.model_fields["PORT"].default
    assert isinstance(default, int)
    return default


# --- the compose files -----------------------------------------------------------------------


def test_both_compose_files_parse_and_define_services() -> None:
    infra, services = _files()
    assert {"kafka", TOPIC_SETUP, "redis", DB} <= set(infra["services"])
    assert {MIGRATE, SERVICE, RELAY} <= set(services["services"])


def test_every_depends_on_target_exists_with_a_known_condition() -> None:
    services = _services()
    for name, service in services.items():
        for target, condition in _depends_on(service).items():
            assert target in services, f"{name} depends on undefined service {target}"
            assert target != name
            assert condition in DEPENDS_ON_CONDITIONS, f"{name} -> {target}: {condition}"


def test_service_waits_for_healthy_infrastructure_and_finished_one_shots() -> None:
    depends = _depends_on(_services()[SERVICE])
    assert depends[DB] == "service_healthy"
    assert depends["redis"] == "service_healthy"
    assert depends[TOPIC_SETUP] == "service_completed_successfully"
    assert depends[MIGRATE] == "service_completed_successfully"
    assert _depends_on(_services()[RELAY]) == depends
    assert _depends_on(_services()[MIGRATE]) == {DB: "service_healthy"}
    assert _depends_on(_services()[TOPIC_SETUP]) == {"kafka": "service_healthy"}


def test_every_service_waited_on_as_healthy_has_a_healthcheck() -> None:
    services = _services()
    for name, service in services.items():
        for target, condition in _depends_on(service).items():
            if condition == "service_healthy":
                check = services[target].get("healthcheck") or {}
                assert check.get("test") and not check.get("disable"), (
                    f"{name} waits for {target} to be healthy, but it has no healthcheck"
                )


def test_networks_and_volumes_used_are_declared() -> None:
    merged = _merged()
    declared_networks = set(merged["networks"])
    declared_volumes = set(merged["volumes"])
    for name, service in merged["services"].items():
        networks = _names(service.get("networks"))
        assert networks, f"{name} names its network"
        assert set(networks) <= declared_networks, f"{name}: undeclared network in {networks}"
        for volume in service.get("volumes") or []:
            source = volume.get("source") if isinstance(volume, dict) else volume.split(":")[0]
            if source and not source.startswith((".", "/", "~", "$")):
                assert source in declared_volumes, f"{name}: undeclared volume {source}"


def test_network_has_its_explicit_name_and_joins_every_service() -> None:
    merged = _merged()
    assert merged["networks"][NETWORK]["name"] == NETWORK
    for name, service in merged["services"].items():
        assert NETWORK in _names(service.get("networks")), name


def test_database_keeps_its_data_in_the_named_volume() -> None:
    db = _services()[DB]
    assert db["image"] == "postgres:15"
    assert "class_management_db_data:/var/lib/postgresql/data" in db["volumes"]
    assert "class_management_db_data" in _merged()["volumes"]


def test_host_ports_do_not_collide() -> None:
    seen: dict[tuple[int, str], tuple[str, str]] = {}
    for name, service in _services().items():
        for port in _ports(service):
            key = (port.published, port.protocol)
            if key in seen:
                other, other_ip = seen[key]
                overlapping = {port.host_ip, other_ip} & {"", "0.0.0.0"} or (
                    port.host_ip == other_ip
                )
                assert not overlapping, f"{name} and {other} both publish {key}"
            seen[key] = (name, port.host_ip)


def test_published_ports() -> None:
    services = _services()
    assert _ports(services[SERVICE]) == [_Port("", 5002, 5002, "tcp")]
    assert _ports(services[DB]) == [_Port("127.0.0.1", 5435, 5432, "tcp")]
    for infra in ("kafka", "redis", DB):
        assert all(port.host_ip == "127.0.0.1" for port in _ports(services[infra])), infra
    for internal in (*ONE_SHOTS, RELAY):
        assert not _ports(services[internal]), internal


def test_container_names_are_unique() -> None:
    names = [s["container_name"] for s in _services().values() if "container_name" in s]
    assert len(names) == len(set(names))
    assert _services()[SERVICE]["container_name"] == "huleedu_class_management_service"
    assert _services()[RELAY]["container_name"] == "huleedu_class_management_relay"


def test_kafka_is_a_single_node_kraft_broker_reachable_as_kafka_9092() -> None:
    kafka = _services()["kafka"]
    env = _environment(kafka)
    assert kafka["image"].startswith("apache/kafka:3.")
    assert kafka["image"].split(":", 1)[1] != "latest"
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "true"
    advertised = env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert any(listener.endswith("://kafka:9092") for listener in advertised)
    # The host listener is advertised on the address and port published on the host.
    (host_port,) = _ports(kafka)
    assert any(
        listener.endswith(f"://{host_port.host_ip}:{host_port.published}")
        for listener in advertised
    )
    listener_ports = {entry.rsplit(":", 1)[1] for entry in env["KAFKA_LISTENERS"].split(",")}
    assert str(host_port.target) in listener_ports
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])


def test_redis_and_database_healthchecks() -> None:
    services = _services()
    assert services["redis"]["image"] == "redis:7"
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    check = services[DB]["healthcheck"]
    assert "pg_isready" in " ".join(check["test"])
    assert {"interval", "timeout", "retries", "start_period"} <= set(check)


def test_database_credentials_come_from_env_with_defaults() -> None:
    db = _services()[DB]["environment"]
    for key in ("POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD"):
        assert re.fullmatch(r"\$\{CMS_DB_\w+:-[^}]+\}", db[key]), f"{key}: {db[key]}"


@pytest.mark.parametrize(
    "env",
    [{}, {"CMS_DB_NAME": "cms", "CMS_DB_USER": "alice", "CMS_DB_PASSWORD": "s3cret"}],
    ids=["defaults", "overridden"],
)
def test_database_url_matches_the_database_container(env: dict[str, str]) -> None:
    db_env = _environment(_services()[DB], env)
    for name in (SERVICE, RELAY, MIGRATE):
        url = urlsplit(_environment(_services()[name], env)[ENV_PREFIX + "DATABASE_URL"])
        assert url.scheme == "postgresql+asyncpg"
        assert (url.hostname, url.port) == (DB, 5432)
        assert url.username == db_env["POSTGRES_USER"]
        assert url.password == db_env["POSTGRES_PASSWORD"]
        assert url.path.lstrip("/") == db_env["POSTGRES_DB"]


# --- compose vs Settings ---------------------------------------------------------------------


def test_every_cms_variable_is_a_settings_field() -> None:
    fields = set(Settings.model_fields)
    for name, service in _services().items():
        for key in _environment(service):
            if key.startswith(ENV_PREFIX):
                assert key.removeprefix(ENV_PREFIX) in fields, f"{name}: {key} is not a setting"


def test_settings_without_a_container_default_are_set() -> None:
    services = _services()
    for name in LONG_RUNNING:
        service_env = _environment(services[name])
        for setting in CONTAINER_REQUIRED:
            assert service_env.get(ENV_PREFIX + setting), f"{name} must set {setting}"
    assert _environment(services[MIGRATE]).get(ENV_PREFIX + "DATABASE_URL")
    assert _environment(services[TOPIC_SETUP]).get(ENV_PREFIX + "KAFKA_BOOTSTRAP_SERVERS")


def test_compose_settings_validate_and_point_at_compose_hostnames(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = _services()
    for name in CMS_IMAGE_SERVICES:
        for key in [key for key in os.environ if key.startswith(ENV_PREFIX)]:
            monkeypatch.delenv(key)
        for key, value in _environment(services[name]).items():
            monkeypatch.setenv(key, value)
        settings = Settings()  # raises if a value does not validate
        if name == MIGRATE:
            assert urlsplit(settings.DATABASE_URL).hostname == DB
        else:
            assert settings.KAFKA_BOOTSTRAP_SERVERS == "kafka:9092"
        if name in LONG_RUNNING:
            assert urlsplit(settings.REDIS_URL).hostname == "redis"
            assert urlsplit(settings.REDIS_URL).port == 6379
            assert settings.KAFKA_ENABLE_IDEMPOTENCE is True
            assert settings.HOST == "0.0.0.0"
            assert settings.PORT == 5002
        if name == SERVICE:
            assert settings.RELAY_ENABLED is False


def test_the_api_verifies_the_gateways_tokens_with_the_shared_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """jwt mode, HS256 with HULEEDU_JWT_SECRET_KEY (the gateway's secret too), a development
    default that validates, and the same settings for the API and its relay."""
    services = _services()
    api_env = _environment(services[SERVICE])
    assert api_env[ENV_PREFIX + "AUTH_MODE"] == "jwt"
    assert api_env[ENV_PREFIX + "JWT_ALGORITHMS"] == "HS256"
    assert api_env[ENV_PREFIX + "JWT_AUDIENCE"] == "huledu-services"
    raw = services[SERVICE]["environment"][ENV_PREFIX + "JWT_SECRET_KEY"]
    assert raw.startswith("${HULEEDU_JWT_SECRET_KEY:-"), raw
    chosen = "a-production-secret-of-at-least-32-bytes"
    assert (
        _environment(services[SERVICE], {"HULEEDU_JWT_SECRET_KEY": chosen})[
            ENV_PREFIX + "JWT_SECRET_KEY"
        ]
        == chosen
    )
    for key in [key for key in os.environ if key.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(key)
    for key, value in api_env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    settings.require_token_keys()  # serve starts: the default secret is long enough
    assert settings.AUTH_MODE.value == "jwt"
    relay_env = _environment(services[RELAY])
    for name in ("AUTH_MODE", "JWT_SECRET_KEY", "JWT_AUDIENCE", "JWT_ALGORITHMS"):
        assert relay_env[ENV_PREFIX + name] == api_env[ENV_PREFIX + name]


def test_docker_md_documents_the_auth_settings_and_the_shared_secret() -> None:
    text = (REPO_ROOT / "docs" / "docker.md").read_text()
    for name in ("AUTH_MODE", "JWT_SECRET_KEY", "JWT_AUDIENCE", "JWT_ALGORITHMS"):
        assert ENV_PREFIX + name in text, name
    assert "HULEEDU_JWT_SECRET_KEY" in text and "API_GATEWAY_JWT_SECRET_KEY" in text


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_urls_name_services_that_exist(name: str) -> None:
    services = _services()
    env = _environment(services[name])
    for key in ("DATABASE_URL", "REDIS_URL"):
        host = urlsplit(env[ENV_PREFIX + key]).hostname
        assert host in services, f"{key} names {host}, which is not a compose service"
    for server in env[ENV_PREFIX + "KAFKA_BOOTSTRAP_SERVERS"].split(","):
        assert server.rsplit(":", 1)[0] in services, server


# --- the one-shot jobs and the service -------------------------------------------------------


def test_topic_setup_runs_the_create_topics_command() -> None:
    setup = _services()[TOPIC_SETUP]
    assert _command(setup) == [*ENTRY, "create-topics"]
    assert _environment(setup)[ENV_PREFIX + "KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert str(setup["restart"]) == "no"


def test_create_topics_uses_common_core_all_topics() -> None:
    parameters = inspect.signature(topic_setup.create_topics).parameters
    assert parameters["topics"].default is ALL_TOPICS
    assert parameters["partitions"].default == 3
    assert parameters["replication_factor"].default == 1
    # One list of topics: no topic name is repeated in the setup code or the compose files.
    for path in (Path(inspect.getfile(topic_setup)), INFRA_FILE, SERVICES_FILE):
        text = path.read_text(encoding="utf-8")
        assert not [topic for topic in ALL_TOPICS if topic in text], path.name


def test_migrate_job_runs_the_migrate_command() -> None:
    migrate = _services()[MIGRATE]
    assert _command(migrate) == [*ENTRY, "migrate"]
    assert str(migrate["restart"]) == "no"


def test_one_shots_do_not_inherit_the_http_healthcheck() -> None:
    for name in ONE_SHOTS:
        assert _services()[name]["healthcheck"] == {"disable": True}, name


def test_cms_image_is_built_from_the_repository_root() -> None:
    services = _services()
    builds = {name: services[name]["build"] for name in CMS_IMAGE_SERVICES}
    images = {services[name]["image"] for name in CMS_IMAGE_SERVICES}
    assert len(images) == 1, f"one image for {CMS_IMAGE_SERVICES}, got {images}"
    for name, build in builds.items():
        assert Path(build["context"]) == Path("."), name
        assert (REPO_ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE


@pytest.mark.parametrize(("name", "command"), [(SERVICE, "serve"), (RELAY, "relay")])
def test_service_port_and_healthcheck_agree_with_settings(name: str, command: str) -> None:
    service = _services()[name]
    port = int(_environment(service)[ENV_PREFIX + "PORT"])
    assert port == _settings_port_default()
    assert _command(service) == [*ENTRY, command]
    if name == SERVICE:
        assert [p.target for p in _ports(service)] == [port]
    # Each container probes its own /healthz (the relay's checks Kafka and the relay too).
    check = " ".join(service["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/healthz" in check
    assert service["healthcheck"]["test"][:2] == ["CMD", "python"]
    assert not service["healthcheck"].get("disable")
    assert str(service["restart"]) == "unless-stopped"


def test_api_has_its_relay_off_and_only_the_relay_service_relays() -> None:
    services = _services()
    api_env = _environment(services[SERVICE])
    assert api_env[ENV_PREFIX + "RELAY_ENABLED"] == "false"
    relaying = [
        name
        for name, service in services.items()
        if service.get("command") and _command(service)[len(ENTRY) :] == ["relay"]
    ]
    assert relaying == [RELAY]
    # The relay runs with the API's settings, apart from RELAY_ENABLED (`relay` ignores it).
    relay_env = _environment(services[RELAY])
    assert ENV_PREFIX + "RELAY_ENABLED" not in relay_env
    assert relay_env == {
        key: value for key, value in api_env.items() if key != ENV_PREFIX + "RELAY_ENABLED"
    }


@pytest.mark.parametrize("command", ["serve", "relay", "migrate", "create-topics"])
def test_commands_used_by_compose_and_the_image_exist(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cms_main([command, "--help"])
    assert exit_info.value.code == 0
    assert command in capsys.readouterr().out


# --- the Dockerfile ------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    _, stages = _dockerfile()
    assert len(stages) >= 2
    assert {stage.base for stage in stages} == {"python:3.11-slim"}
    assert _final_stage().base == "python:3.11-slim"


def test_dockerfile_cmd_and_expose_agree_with_settings_and_entry_point() -> None:
    final = _final_stage()
    (cmd,) = final.all("CMD")
    assert cmd.json_args == [*ENTRY, "serve"]
    (expose,) = final.all("EXPOSE")
    assert expose.args.split() == [str(_settings_port_default())]


def test_dockerfile_runs_as_non_root() -> None:
    users = _final_stage().all("USER")
    assert users, "the runtime stage sets USER"
    user = users[-1].args.split(":")[0]
    assert user not in {"root", "0"}
    last_user_line = users[-1].line
    # Nothing after USER runs as root again, and the CMD comes after it.
    assert all(ins.line > last_user_line for ins in _final_stage().all("CMD"))


def test_dockerfile_healthcheck_probes_healthz_on_the_settings_port() -> None:
    (check,) = _final_stage().all("HEALTHCHECK")
    flags, rest = check.flags_and_rest()
    assert any(flag.startswith("--interval=") for flag in flags)
    assert rest.startswith("CMD")
    command = json.loads(rest.removeprefix("CMD").strip())
    assert command[:2] == ["python", "-c"]
    assert "/healthz" in command[2]
    assert f"'{ENV_PREFIX}PORT', '{_settings_port_default()}'" in command[2]


def test_dockerfile_runtime_environment() -> None:
    final = _final_stage()
    env_text = " ".join(ins.args for ins in final.all("ENV"))
    assert "PYTHONPATH=/app" in env_text
    assert "PATH=/app/.venv/bin:$PATH" in env_text
    assert [ins.args for ins in final.all("WORKDIR")] == ["/app"]
    copied = [ins.args for ins in final.all("COPY")]
    assert any("--from=builder" in ins and "/app/.venv" in ins for ins in copied)


def test_dockerfile_installs_locked_dependencies_before_copying_sources() -> None:
    builder = _builder_stage()
    package = re.search(r'^name\s*=\s*"([^"]+)"', SERVICE_PYPROJECT.read_text(), re.M)
    assert package
    syncs = [ins for ins in builder.all("RUN") if "uv sync" in ins.args]
    assert len(syncs) == 2
    for sync in syncs:
        assert "--locked" in sync.args or "--frozen" in sync.args
        assert "--no-dev" in sync.args
        assert f"--package {package[1]}" in sync.args
    assert "--no-install-workspace" in syncs[0].args
    assert any("uv==" in ins.args for ins in builder.all("RUN")), "uv is pinned"
    # Only pyproject.toml / uv.lock files are copied before the dependency layer.
    early = [ins for ins in builder.all("COPY") if ins.line < syncs[0].line]
    sources = [word for ins in early for word in ins.args.split()[:-1]]
    assert sources and all(
        word in {"pyproject.toml", "uv.lock"} or word.endswith("/pyproject.toml")
        for word in sources
    ), sources


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    _, stages = _dockerfile()
    for stage in stages:
        for ins in stage.all("COPY"):
            flags, rest = ins.flags_and_rest()
            if any(flag.startswith("--from=") for flag in flags):
                continue
            for source in rest.split()[:-1]:
                path = REPO_ROOT / source
                assert path.exists(), f"COPY {source}: not in the repository"
                assert not _ignored(source.rstrip("/")), f"COPY {source}: .dockerignore'd"
                if path.is_file():
                    continue
                kept = [
                    p
                    for p in path.rglob("*.py")
                    if not _ignored(p.relative_to(REPO_ROOT).as_posix())
                ]
                assert kept, f"COPY {source}: every Python file is .dockerignore'd"


# --- .dockerignore -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        "devstack/.venv/lib/x.py",
        ".git/HEAD",
        ".devstack/postgres/PG_VERSION",
        "services/class_management_service/tests/unit/test_x.py",
        "services/class_management_service/tests",
        "common_core/tests/test_topics.py",
        "devstack/tests/test_x.py",
        "common_core/src/common_core/__pycache__/names.cpython-311.pyc",
        ".pytest_cache/v/cache",
        ".mypy_cache/3.11/x.json",
        ".ruff_cache/x",
        ".env",
    ],
)
def test_dockerignore_excludes(path: str) -> None:
    assert _ignored(path)


@pytest.mark.parametrize(
    "path",
    [
        "pyproject.toml",
        "uv.lock",
        "common_core/pyproject.toml",
        "common_core/src/common_core/events/topics.py",
        "devstack/pyproject.toml",
        "services/__init__.py",
        "services/class_management_service/config.py",
        "services/class_management_service/pyproject.toml",
        "services/class_management_service/alembic/env.py",
    ],
)
def test_dockerignore_keeps_what_the_image_needs(path: str) -> None:
    assert not _ignored(path)


def test_dockerignore_matcher_follows_docker_rules() -> None:
    """The matcher above, on rules whose Docker behaviour is documented."""
    assert _pattern_regex("**/tests").match("tests")
    assert _pattern_regex("**/tests").match("a/b/tests")
    assert not _pattern_regex("*/tests").match("a/b/tests")
    assert _pattern_regex("**/*.py[cod]").match("x/y.pyc")
    assert not _pattern_regex(".venv").match("a/.venv")
