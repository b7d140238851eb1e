"""Benchmark of the Class Management Service, served the way production serves it.

``uv run python scripts/bench/run_bench.py`` (or ``make bench``):

1. starts a LocalStack (real PostgreSQL, Redis and a Kafka-protocol broker, no Docker);
2. migrates a fresh database and creates the topics with the service's own commands;
3. runs the service as docker-compose.services.yml does: the API,
   ``python -m services.class_management_service serve`` with RELAY_ENABLED=false, and
   the outbox relay, ``python -m services.class_management_service relay``, as two
   subprocesses (the production ASGI server and settings; only the addresses come from
   the stack). ``--relay-in-process`` serves one process that relays too, for comparison;
4. seeds data through the HTTP API;
5. loads every scenario with ``wrk`` from a separate process, at each connection count,
   for ``--duration`` seconds after a ``--warmup``, and measures event delivery with
   ``event_probe.py`` during the POST /v1/classes runs;
6. prints one table (Markdown) and the targets; ``--json PATH`` also writes the numbers.

The output format is kept stable so that runs can be compared (docs/performance.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from huleedu_devstack import free_port
from import_bench import import_report, import_targets, measure_imports

# scripts/bench is the script's own directory, first on sys.path.
from outbox_backlog import Backlog, measure_backlog
from platform_data import HEAVY_TEACHER, PlatformShape, load_platform

REPO = Path(__file__).resolve().parents[2]
LUA_DIR = Path(__file__).resolve().parent / "lua"
PROBE = Path(__file__).resolve().parent / "event_probe.py"
SERVICE_PREFIX = "CLASS_MANAGEMENT_SERVICE_"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# Targets of the issue ("class creation/retrieval under 200 ms" is the floor, these the goal).
TARGET_GET_RATIO = 0.50
TARGET_POST_RATIO = 0.30
TARGET_P99_MS_AT_16 = 25.0
TARGET_EVENT_P99_MS = 200.0
TARGET_RSS_MB = 200.0
# Issue 18: a platform's data and load below saturation.
TARGET_BIG_OVER_SMALL = 1.2
TARGET_PACED_P99_MS = 10.0
TARGET_PACED_MAX_MS = 50.0
TARGET_SEARCH_OVER_LIST = 2.0
TARGET_BACKLOG_PER_S = 2000.0

READER, WRITER, UPDATER, PROBE_USER = "bench-reader", "bench-writer", "bench-updater", "bench-probe"
READER_CLASSES = 60  # more than one page: GET /v1/classes returns 20 of them
ROSTER_STUDENTS = 30
UPDATER_CLASSES = 64


# -- seeded data and scenarios ---------------------------------------------------------


@dataclass
class Seed:
    reader_class_ids: list[str] = field(default_factory=list)
    roster_class_id: str = ""
    writer_class_ids: list[str] = field(default_factory=list)
    updater_class_ids: list[str] = field(default_factory=list)
    # --scale: the heavy teacher's classes and students (as loaded: the same in each database).
    heavy_class_ids: list[str] = field(default_factory=list)
    heavy_student_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    lua: str
    path: str
    args: Callable[[Seed, str], list[str]]
    write: bool = False


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("healthz", "GET /healthz", "get_static.lua", "/healthz", lambda s, r: []),
    Scenario("live", "GET /healthz/live", "get_static.lua", "/healthz/live", lambda s, r: []),
    Scenario(
        "get_class",
        "GET /v1/classes/{id}",
        "get_ids.lua",
        "/",
        lambda s, r: [f"user={READER}", "ids=" + ",".join(s.reader_class_ids)],
    ),
    Scenario(
        "list_classes",
        "GET /v1/classes (20 items)",
        "get_static.lua",
        "/v1/classes?limit=20",
        lambda s, r: [f"user={READER}"],
    ),
    Scenario(
        "roster",
        "GET /v1/classes/{id}/roster (30)",
        "get_ids.lua",
        "/",
        lambda s, r: [f"user={READER}", f"ids={s.roster_class_id}", "suffix=/roster?limit=50"],
    ),
    Scenario(
        "post_class",
        "POST /v1/classes",
        "post_class.lua",
        "/v1/classes",
        lambda s, r: [f"user={WRITER}", f"run={r}"],
        write=True,
    ),
    Scenario(
        "put_class",
        "PUT /v1/classes/{id}",
        "put_class.lua",
        "/",
        lambda s, r: [f"user={UPDATER}", "ids=" + ",".join(s.updater_class_ids), f"run={r}"],
        write=True,
    ),
    Scenario(
        "post_student",
        "POST /v1/classes/students (2 classes)",
        "post_student.lua",
        "/v1/classes/students",
        lambda s, r: [f"user={WRITER}", "ids=" + ",".join(s.writer_class_ids), f"run={r}"],
        write=True,
    ),
)

# --scale: what the heavy teacher does, against the platform-sized database and against one
# holding only the heavy teacher (scripts/bench/platform_data.py), in the same run.
HEAVY = [f"user={HEAVY_TEACHER}"]
# What the heavy teacher searches their students for, in turn (parts of names, accents
# left out or typed).
SEARCH_TERMS = ("lindq", "öberg", "sjo", "emma", "karlsson", "hedl", "åsa", "ali")
BATCH_SIZE = 100  # ids per batch fetch (the API's most)
SCALE_SHARED_BUFFERS = "2GB"  # PostgreSQL's shared_buffers with --scale
BATCHES = 10  # batch fetches taken in turn


def _paths(*paths: str) -> str:
    return "paths=" + "|".join(paths)


def _search_paths(seeded: Seed, run: str) -> list[str]:
    queries = ("/v1/classes/students?limit=20&q=" + urllib.parse.quote(t) for t in SEARCH_TERMS)
    return [*HEAVY, _paths(*queries)]


def _batch_paths(seeded: Seed, run: str) -> list[str]:
    ids = seeded.heavy_student_ids
    batches = (
        f"/v1/classes/students?limit={BATCH_SIZE}&ids="
        + ",".join(ids[number * BATCH_SIZE : (number + 1) * BATCH_SIZE])
        for number in range(BATCHES)
    )
    return [*HEAVY, _paths(*batches)]


def _heavy_classes(seeded: Seed, run: str) -> list[str]:
    return [*HEAVY, "ids=" + ",".join(seeded.heavy_class_ids)]


HEAVY_SCENARIOS: tuple[Scenario, ...] = (
    Scenario("heavy_get_class", "heavy: GET /v1/classes/{id}", "get_ids.lua", "/", _heavy_classes),
    Scenario(
        "heavy_list_classes",
        "heavy: GET /v1/classes (20)",
        "get_static.lua",
        "/v1/classes?limit=20",
        lambda s, r: HEAVY,
    ),
    Scenario(
        "heavy_classes_by_name",
        "heavy: GET /v1/classes?sort=name (20)",
        "get_static.lua",
        "/v1/classes?limit=20&sort=name",
        lambda s, r: HEAVY,
    ),
    Scenario(
        "heavy_roster",
        "heavy: GET /v1/classes/{id}/roster (50)",
        "get_ids.lua",
        "/",
        lambda s, r: [*_heavy_classes(s, r), "suffix=/roster?limit=50"],
    ),
    Scenario(
        "heavy_list_students",
        "heavy: GET /v1/classes/students (20)",
        "get_static.lua",
        "/v1/classes/students?limit=20",
        lambda s, r: HEAVY,
    ),
    Scenario(
        "heavy_students_by_updated",
        "heavy: GET /v1/classes/students?sort=-updated_at (20)",
        "get_static.lua",
        "/v1/classes/students?limit=20&sort=-updated_at",
        lambda s, r: HEAVY,
    ),
    Scenario(
        "heavy_search",
        "heavy: GET /v1/classes/students?q= (20)",
        "get_paths.lua",
        "/",
        _search_paths,
    ),
    Scenario(
        "heavy_batch",
        f"heavy: GET /v1/classes/students?ids= ({BATCH_SIZE})",
        "get_paths.lua",
        "/",
        _batch_paths,
    ),
    Scenario(
        "heavy_post_class",
        "heavy: POST /v1/classes",
        "post_class.lua",
        "/v1/classes",
        lambda s, r: [*HEAVY, f"run={r}"],
        write=True,
    ),
    Scenario(
        "heavy_put_class",
        "heavy: PUT /v1/classes/{id}",
        "put_class.lua",
        "/",
        lambda s, r: [*_heavy_classes(s, r), f"run={r}"],
        write=True,
    ),
    Scenario(
        "heavy_post_student",
        "heavy: POST /v1/classes/students (2 classes)",
        "post_student.lua",
        "/v1/classes/students",
        lambda s, r: [*HEAVY, "ids=" + ",".join(s.heavy_class_ids[:2]), f"run={r}"],
        write=True,
    ),
)
SCENARIO_KEYS = tuple(scenario.key for scenario in SCENARIOS + HEAVY_SCENARIOS)
REFERENCE_KEYS = ("healthz", "live")
# A paced run's connections: enough that the rate, not the connections, sets the load.
PACED_CONNECTIONS = 16


@dataclass
class RunResult:
    scenario: str
    label: str
    connections: int
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    service_cpu_pct: float
    service_cpu_us_per_request: float
    postgres_cpu_pct: float
    machine_busy_pct: float
    pg_sessions_opened: int
    relay_cpu_pct: float | None = None
    database: str = ""
    paced_rate: float | None = None  # requests per second asked for, if paced
    ratio_healthz: float | None = None
    ratio_live: float | None = None
    event: dict[str, Any] | None = None
    statements: list[dict[str, Any]] | None = None


# -- small helpers ---------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def http(
    method: str,
    url: str,
    body: dict[str, Any] | None = None,
    user: str | None = None,
    timeout: float = 10.0,
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if user:
        request.add_header("X-User-ID", user)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw)
        except ValueError:
            return error.code, raw.decode(errors="replace")


def cpu_ticks(pid: int, children: bool = False) -> int:
    """utime + stime of one process (plus its reaped children's), in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return 0
    fields = stat[stat.rfind(b")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks


def each_process(file: str) -> Iterator[tuple[int, bytes]]:
    """(pid, contents of /proc/<pid>/<file>) for every process still there when read."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/{file}", "rb") as handle:
                yield int(entry), handle.read()
        except OSError:
            continue


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a wrapper such as ``uv run`` or a server's workers)."""
    children: dict[int, list[int]] = {}
    for child, stat in each_process("stat"):
        parent = int(stat[stat.rfind(b")") + 2 :].split()[1])
        children.setdefault(parent, []).append(child)
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(children.get(current, ()))
    return tree


def tree_ticks(pid: int) -> dict[int, int]:
    return {member: cpu_ticks(member) for member in process_tree(pid)}


def postgres_ticks(pids: list[int], postmaster: int | None) -> dict[int, int]:
    """CPU ticks of every PostgreSQL process; the postmaster's include exited backends."""
    return {pid: cpu_ticks(pid, children=pid == postmaster) for pid in pids}


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores."""
    with open("/proc/stat") as handle:
        values = [int(value) for value in handle.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def proc_status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def pg_query(database_url: str, sql: str, *args: Any) -> list[Any]:
    """The rows of one query on the bench database, in a session of its own."""
    import asyncio

    import asyncpg  # type: ignore[import-untyped]

    async def query() -> list[Any]:
        connection = await asyncpg.connect(database_url)
        try:
            return list(await connection.fetch(sql, *args))
        finally:
            await connection.close()

    return asyncio.run(query())


def pg_sessions(database_url: str) -> int:
    """Sessions PostgreSQL has opened on the bench database so far (pg_stat_database)."""
    rows = pg_query(
        database_url, "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
    )
    return int(rows[0][0] or 0)


# With --pg-statements: what PostgreSQL spent on each statement during one run. The times
# are the server's wall time (waits for locks and for a core included), not CPU.
TOP_STATEMENTS = """
    SELECT calls, total_exec_time AS total_ms, rows,
           regexp_replace(query, '\\s+', ' ', 'g') AS query
    FROM pg_stat_statements
    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND query !~ 'pg_stat_'
    ORDER BY total_exec_time DESC
    LIMIT $1
"""


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def busy_pytest() -> int:
    """How many pytest processes run on the machine now (other engineers' test runs)."""
    return sum(
        1 for pid, cmdline in each_process("cmdline") if b"pytest" in cmdline and pid != os.getpid()
    )


# -- the stack and the service ----------------------------------------------------------


def postgres_settings(pg_statements: bool, scale: bool) -> dict[str, str]:
    """The ``postgresql.conf`` settings of the bench's stack."""
    settings = {"shared_preload_libraries": "pg_stat_statements"} if pg_statements else {}
    if scale:
        # The platform's database (about 1 GB) in PostgreSQL's own buffers, as a production
        # server's memory would hold it; with the default 128 MB every read of it would go
        # through the OS cache, a system call and a copy per page, which the small one's
        # reads would not.
        settings["shared_buffers"] = SCALE_SHARED_BUFFERS
    return settings


@contextmanager
def local_stack(settings: dict[str, str]) -> Iterator[Any]:
    from huleedu_devstack.local import LocalStack

    stack = LocalStack(postgres_settings=settings)
    log("starting LocalStack (PostgreSQL, Redis, tansu)...")
    stack.start()
    try:
        yield stack
    finally:
        log("stopping LocalStack")
        stack.stop()


def service_env(stack: Any, database_url: str, port: int, overrides: list[str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(SERVICE_PREFIX)}
    env |= {
        f"{SERVICE_PREFIX}DATABASE_URL": database_url,
        f"{SERVICE_PREFIX}REDIS_URL": stack.redis_url,
        f"{SERVICE_PREFIX}KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
        # The local broker (tansu) has no idempotent producers.
        f"{SERVICE_PREFIX}KAFKA_ENABLE_IDEMPOTENCE": "false",
        f"{SERVICE_PREFIX}HOST": "127.0.0.1",
        f"{SERVICE_PREFIX}PORT": str(port),
        # The load is written with X-User-ID (scripts/bench/lua), as the numbers were measured.
        f"{SERVICE_PREFIX}AUTH_MODE": "trusted-header",
    }
    for item in overrides:
        key, _, value = item.partition("=")
        env[key if key.startswith(SERVICE_PREFIX) else SERVICE_PREFIX + key] = value
    return env


def run_command(args: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{what} failed ({result.returncode}):\n{result.stdout}{result.stderr}")


@contextmanager
def served(
    command: list[str], env: dict[str, str], base_url: str, log_path: Path, what: str = "service"
) -> Iterator[int]:
    log(f"{what}: {shlex.join(command)} (log: {log_path})")
    with open(log_path, "wb") as output:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(
                    f"the {what} exited with {process.returncode}:\n" + log_path.read_text()[-3000:]
                )
            try:
                status, body = http("GET", base_url + "/healthz", timeout=3)
                if status == 200:
                    break
            except OSError:
                status, body = 0, None
            if time.monotonic() > deadline:
                raise SystemExit(f"the {what} is not healthy after 60 s: {status} {body}")
            time.sleep(0.3)
        log(f"{what} pid {process.pid} is healthy")
        yield process.pid
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def seed(base_url: str) -> Seed:
    seeded = Seed()

    def create_class(user: str, name: str) -> str:
        status, body = http(
            "POST", base_url + "/v1/classes", {"name": name, "course_codes": ["ENG5"]}, user
        )
        if status != 201:
            raise SystemExit(f"seeding a class failed: {status} {body}")
        return str(body["id"])

    for number in range(READER_CLASSES):
        seeded.reader_class_ids.append(create_class(READER, f"Reader class {number}"))
    seeded.roster_class_id = seeded.reader_class_ids[0]
    for number in range(ROSTER_STUDENTS):
        status, body = http(
            "POST",
            base_url + "/v1/classes/students",
            {
                "person_name": {"first_name": f"Student{number}", "last_name": f"Roster{number}"},
                "email": f"roster{number}@bench.example.com",
                "class_ids": [seeded.roster_class_id],
            },
            READER,
        )
        if status != 201:
            raise SystemExit(f"seeding a student failed: {status} {body}")
    seeded.writer_class_ids = [create_class(WRITER, f"Writer class {n}") for n in range(2)]
    seeded.updater_class_ids = [
        create_class(UPDATER, f"Updater class {n}") for n in range(UPDATER_CLASSES)
    ]
    # Check that each scenario answers as expected before loading it.
    checks = [
        (f"/v1/classes/{seeded.reader_class_ids[1]}", 200, None),
        ("/v1/classes?limit=20", 200, lambda b: len(b["classes"]) == 20),
        (
            f"/v1/classes/{seeded.roster_class_id}/roster?limit=50",
            200,
            lambda b: len(b["students"]) == ROSTER_STUDENTS,
        ),
    ]
    for path, expected, predicate in checks:
        status, body = http("GET", base_url + path, user=READER)
        if status != expected or (predicate is not None and not predicate(body)):
            raise SystemExit(f"seed check failed for {path}: {status} {str(body)[:300]}")
    return seeded


def seed_heavy(base_url: str, database_url: str, seeded: Seed) -> None:
    """The heavy teacher's ids as loaded (platform_data.py), and a check of their routes."""
    for table, ids in (
        ("classes", seeded.heavy_class_ids),
        ("students", seeded.heavy_student_ids),
    ):
        rows = pg_query(
            database_url,
            f"SELECT id FROM {table} WHERE created_by_user_id = $1 ORDER BY id",
            HEAVY_TEACHER,
        )
        ids[:] = [str(row[0]) for row in rows]
    if len(seeded.heavy_student_ids) < BATCH_SIZE * BATCHES:
        raise SystemExit(f"the heavy teacher has too few students: {len(seeded.heavy_student_ids)}")
    for scenario in HEAVY_SCENARIOS:
        if scenario.write:
            continue
        options = dict(arg.split("=", 1) for arg in scenario.args(seeded, "check"))
        path = scenario.path
        if "paths" in options:
            path = options["paths"].split("|")[0]
        elif "ids" in options:
            path = f"/v1/classes/{options['ids'].split(',')[0]}{options.get('suffix', '')}"
        status, body = http("GET", base_url + path, user=HEAVY_TEACHER)
        if status != 200:
            raise SystemExit(f"seed check failed for {path}: {status} {str(body)[:300]}")


# -- wrk --------------------------------------------------------------------------------


def lua_script(name: str, directory: Path, paced: bool = False) -> Path:
    """report.lua (shared setup/done) followed by the scenario's script (and pace.lua when
    paced), as one file."""
    parts = ["report.lua", name, *(["pace.lua"] if paced else [])]
    path = directory / ("paced-" + name if paced else name)
    if not path.exists():
        path.write_text("\n".join((LUA_DIR / part).read_text() for part in parts))
    return path


def wrk_command(
    scenario: Scenario,
    base_url: str,
    connections: int,
    duration: float,
    threads: int,
    seeded: Seed,
    lua_dir: Path,
    rate: float | None = None,
) -> list[str]:
    """wrk's command for one run; with ``rate`` (requests per second), a paced one."""
    run_tag = uuid.uuid4().hex[:10]
    threads = min(threads, connections)
    pacing = [f"rate={rate / threads}"] if rate is not None else []
    return [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "5s",
        "-s",
        str(lua_script(scenario.lua, lua_dir, paced=rate is not None)),
        base_url + scenario.path,
        "--",
        *scenario.args(seeded, run_tag),
        *pacing,
    ]


def parse_wrk(output: str) -> dict[str, Any]:
    for line in output.splitlines():
        if line.startswith("BENCH_RESULT "):
            parsed: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
            return parsed
    raise SystemExit(f"wrk printed no result:\n{output}")


def start_probe(base_url: str, bootstrap: str, duration: float) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [
            sys.executable,
            str(PROBE),
            f"--base-url={base_url}",
            f"--bootstrap={bootstrap}",
            f"--user={PROBE_USER}",
            "--rate=20",
            f"--duration={max(1.0, duration - 2.0)}",
            "--start-delay=1",
            "--drain=15",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("PROBE_READY"):
        _, error = process.communicate(timeout=30)
        raise SystemExit(f"the event probe did not start: {line}{error}")
    return process


def finish_probe(process: subprocess.Popen[str]) -> dict[str, Any]:
    output, error = process.communicate(timeout=120)
    for line in output.splitlines():
        if line.startswith("PROBE_RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("PROBE_RESULT "))
            return result
    raise SystemExit(f"the event probe failed ({process.returncode}):\n{output}{error}")


def measure(
    scenario: Scenario,
    connections: int,
    args: argparse.Namespace,
    base_url: str,
    service_pid: int,
    relay_pid: int | None,
    postgres_pids: Callable[[], list[int]],
    bootstrap: str,
    database_url: str,
    seeded: Seed,
    lua_dir: Path,
    database: str = "",
    rate: float | None = None,
) -> RunResult:
    if args.warmup > 0:
        warmup = wrk_command(
            scenario, base_url, connections, args.warmup, args.threads, seeded, lua_dir, rate
        )
        subprocess.run(warmup, capture_output=True, text=True, check=False)
    command = wrk_command(
        scenario, base_url, connections, args.duration, args.threads, seeded, lua_dir, rate
    )
    probe = (
        start_probe(base_url, bootstrap, args.duration)
        if scenario.key == "post_class" and rate is None
        else None
    )
    postmaster = min(postgres_pids(), default=None)  # the first PostgreSQL process started
    service_before = tree_ticks(service_pid)
    relay_before = tree_ticks(relay_pid) if relay_pid is not None else {}
    pg_before = postgres_ticks(postgres_pids(), postmaster)
    sessions_before = pg_sessions(database_url)
    if args.pg_statements:
        pg_query(database_url, "SELECT pg_stat_statements_reset()")
    machine_before = machine_ticks()
    started = time.monotonic()
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    service_after = tree_ticks(service_pid)
    service_cpu_s = (
        sum(max(ticks - service_before.get(pid, 0), 0) for pid, ticks in service_after.items())
        / CLOCK_TICKS
    )
    service_cpu = service_cpu_s / elapsed * 100
    relay_cpu = None
    if relay_pid is not None:
        relay_after = tree_ticks(relay_pid)
        relay_cpu = (
            sum(max(ticks - relay_before.get(pid, 0), 0) for pid, ticks in relay_after.items())
            / CLOCK_TICKS
            / elapsed
            * 100
        )
    pg_after = postgres_ticks(postgres_pids(), postmaster)
    pg_cpu = (
        sum(max(ticks - pg_before.get(pid, 0), 0) for pid, ticks in pg_after.items())
        / CLOCK_TICKS
        / elapsed
        * 100
    )
    # Each pg_sessions() call opens a session of its own: the second one is not the service's.
    sessions_opened = pg_sessions(database_url) - sessions_before - 1
    statements = None
    if args.pg_statements:
        statements = [
            dict(row) for row in pg_query(database_url, TOP_STATEMENTS, args.pg_statements)
        ]
    machine_after = machine_ticks()
    machine_busy = (
        (machine_after[0] - machine_before[0]) / max(machine_after[1] - machine_before[1], 1) * 100
    )
    if completed.returncode != 0:
        raise SystemExit(f"wrk failed: {shlex.join(command)}\n{completed.stderr}")
    result = parse_wrk(completed.stdout)
    duration_s = result["duration_us"] / 1e6
    errors = sum(
        result[key]
        for key in (
            "connect_errors",
            "read_errors",
            "write_errors",
            "status_errors",
            "timeouts",
        )
    )
    run = RunResult(
        scenario=scenario.key,
        label=scenario.label,
        connections=connections,
        requests=result["requests"],
        duration_s=round(duration_s, 3),
        rps=result["requests"] / duration_s,
        p50_ms=result["p50_us"] / 1000,
        p90_ms=result["p90_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        max_ms=result["max_us"] / 1000,
        errors=errors,
        service_cpu_pct=service_cpu,
        service_cpu_us_per_request=service_cpu_s * 1e6 / max(result["requests"], 1),
        postgres_cpu_pct=pg_cpu,
        machine_busy_pct=machine_busy,
        pg_sessions_opened=sessions_opened,
        relay_cpu_pct=relay_cpu,
        statements=statements,
        database=database,
        paced_rate=rate,
    )
    if probe is not None:
        run.event = finish_probe(probe)
    return run


# -- report -----------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:.{digits}f}"


def report(results: list[RunResult], meta: dict[str, Any]) -> str:
    databases = meta["databases"]
    closed = [run for run in results if run.paced_rate is None]
    lines = [
        "# Class Management Service benchmark",
        "",
        f"- machine: {meta['cores']} cores ({meta['cpu']}), "
        f"load average before the run: {meta['load_before']}, "
        f"after: {meta['load_after']}, pytest processes seen: {meta['pytest_seen']}",
        f"- server: `{meta['serve_command']}`; settings: {meta['settings']}",
        f"- outbox relay: {meta['relay']}",
        *(
            [f"- PostgreSQL: shared_buffers {meta['postgres_settings']['shared_buffers']}"]
            if "shared_buffers" in meta["postgres_settings"]
            else []
        ),
        f"- load: wrk {meta['wrk_threads']} thread(s), {fmt(meta['duration'], 0)} s per run "
        f"after a {fmt(meta['warmup'], 0)} s warm-up; the service, PostgreSQL, Redis, "
        "the broker and wrk share the machine",
        *(
            f"- {name} database: {description}"
            for name, description in databases.items()
            if len(databases) > 1
        ),
        "",
        "| scenario | conns | req/s | p50 ms | p99 ms | errors | vs /healthz | vs live "
        "| svc CPU % | svc CPU µs/req | pg CPU % | pg sessions | machine busy % |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for run in closed:
        label = f"[{run.database}] {run.label}" if len(databases) > 1 else run.label
        lines.append(
            f"| {label} | {run.connections} | {run.rps:.0f} | {fmt(run.p50_ms)} "
            f"| {fmt(run.p99_ms)} | {run.errors} | {fmt(run.ratio_healthz, 2)} "
            f"| {fmt(run.ratio_live, 2)} | {run.service_cpu_pct:.0f} "
            f"| {run.service_cpu_us_per_request:.0f} | {run.postgres_cpu_pct:.0f} "
            f"| {run.pg_sessions_opened} | {run.machine_busy_pct:.0f} |"
        )
    events = [run for run in results if run.event is not None]
    if events:
        lines += [
            "",
            "Event delivery, 201 response -> consumed from the broker (probe: 20 POST/s with "
            "its own X-Correlation-ID, under the POST /v1/classes load):",
            "",
            "| wrk conns | events | p50 ms | p99 ms | max ms | missing | probe HTTP p99 ms "
            "| relay CPU % |",
            "|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for run in events:
            event = run.event or {}
            lines.append(
                f"| {run.connections} | {event['delivered']} | {fmt(event['p50_ms'])} "
                f"| {fmt(event['p99_ms'])} | {fmt(event['max_ms'])} | {event['missing']} "
                f"| {fmt(event['http_p99_ms'])} | {fmt(run.relay_cpu_pct, 0)} |"
            )
    lines += paced_report(results) + scale_report(closed) + backlog_report(meta)
    lines += [
        "",
        f"- service peak RSS (VmHWM): {meta['rss_peak_mb']:.1f} MB "
        f"(VmRSS at the end: {meta['rss_end_mb']:.1f} MB)",
        "- relay process peak RSS (VmHWM): "
        + (
            f"{meta['relay_rss_peak_mb']:.1f} MB"
            if meta["relay_rss_peak_mb"] is not None
            else "none (--relay-in-process: the API process relays)"
        ),
        f"- service log: {meta['log_lines']} lines, {meta['log_bytes_per_request']:.0f} bytes "
        "per request",
        f"- total benchmark time: {meta['elapsed_s']:.0f} s",
    ]
    profiled = [run for run in results if run.statements is not None]
    if profiled:
        lines += [
            "",
            "PostgreSQL statements per run (pg_stat_statements; server wall time per request, "
            "waits included):",
            "",
            "| scenario | conns | calls per request | µs per request | rows per call | statement |",
            "|---|--:|--:|--:|--:|---|",
        ]
        for run in profiled:
            requests = max(run.requests, 1)
            for statement in run.statements or ():
                calls = max(statement["calls"], 1)
                text = statement["query"].replace("|", "\\|")
                lines.append(
                    f"| {run.label} | {run.connections} | {statement['calls'] / requests:.2f} "
                    f"| {statement['total_ms'] * 1000 / requests:.0f} "
                    f"| {statement['rows'] / calls:.1f} | `{text[:110]}` |"
                )
    return "\n".join(lines)


def paced_report(results: list[RunResult]) -> list[str]:
    """The table of the paced runs (latency below saturation), if any."""
    paced = [run for run in results if run.paced_rate is not None]
    if not paced:
        return []
    lines = [
        "",
        f"Below saturation: each route paced at half the most it served ({PACED_CONNECTIONS} "
        "connections; wrk with scripts/bench/lua/pace.lua, latency from each request's send):",
        "",
        "| scenario | db | asked req/s | served req/s | p50 ms | p99 ms | max ms | errors "
        "| svc CPU µs/req |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for run in paced:
        lines.append(
            f"| {run.label} | {run.database} | {fmt(run.paced_rate, 0)} | {run.rps:.0f} "
            f"| {fmt(run.p50_ms, 2)} | {fmt(run.p99_ms, 2)} | {fmt(run.max_ms, 1)} "
            f"| {run.errors} | {run.service_cpu_us_per_request:.0f} |"
        )
    return lines


def big_over_small(closed: list[RunResult]) -> list[tuple[RunResult, RunResult]]:
    """(small, big) pairs of the same scenario at the same connections."""
    small = {(run.scenario, run.connections): run for run in closed if run.database == "small"}
    return [
        (small[(run.scenario, run.connections)], run)
        for run in closed
        if run.database == "big" and (run.scenario, run.connections) in small
    ]


def scale_report(closed: list[RunResult]) -> list[str]:
    """The big database's p99 and API CPU per request over the small one's, per route."""
    pairs = [pair for pair in big_over_small(closed) if pair[0].scenario not in REFERENCE_KEYS]
    if not pairs:
        return []
    lines = [
        "",
        "Big database over small, same run (the API process's CPU per request from /proc):",
        "",
        "| scenario | conns | p99 ms small | p99 ms big | p99 big/small | CPU µs/req small "
        "| CPU µs/req big | CPU big/small |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for small, big in pairs:
        lines.append(
            f"| {big.label} | {big.connections} | {fmt(small.p99_ms)} | {fmt(big.p99_ms)} "
            f"| {fmt(big.p99_ms / small.p99_ms, 2)} | {small.service_cpu_us_per_request:.0f} "
            f"| {big.service_cpu_us_per_request:.0f} "
            f"| {fmt(big.service_cpu_us_per_request / small.service_cpu_us_per_request, 2)} |"
        )
    return lines


def scale_targets(results: list[RunResult]) -> list[tuple[str, bool | None, str]]:
    """The targets of --scale and --paced (issue 18)."""
    checks: list[tuple[str, bool | None, str]] = []
    closed = [run for run in results if run.paced_rate is None]
    pairs = [pair for pair in big_over_small(closed) if pair[0].scenario not in REFERENCE_KEYS]
    for name, field_name in (("p99", "p99_ms"), ("CPU per request", "service_cpu_us_per_request")):
        if not pairs:
            break
        ratios = [
            (getattr(big, field_name) / max(getattr(small, field_name), 1e-9), big)
            for small, big in pairs
        ]
        worst, run = max(ratios, key=lambda item: item[0])
        checks.append(
            (
                f"{name}, big database over small <= {TARGET_BIG_OVER_SMALL:.1f}x on every route",
                worst <= TARGET_BIG_OVER_SMALL,
                f"worst {worst:.2f}x ({run.label} at {run.connections} conns); "
                f"{sum(ratio > TARGET_BIG_OVER_SMALL for ratio, _ in ratios)} of "
                f"{len(ratios)} over",
            )
        )
    paced = [run for run in results if run.paced_rate is not None]
    if paced:
        for name, field_name, goal in (
            ("p99", "p99_ms", TARGET_PACED_P99_MS),
            ("max", "max_ms", TARGET_PACED_MAX_MS),
        ):
            worst_run = max(paced, key=lambda run: float(getattr(run, field_name)))
            over = sum(getattr(run, field_name) > goal for run in paced)
            checks.append(
                (
                    f"at half of each route's maximum rate, {name} <= {goal:.0f} ms",
                    over == 0,
                    f"worst {getattr(worst_run, field_name):.1f} ms ({worst_run.label}, "
                    f"{worst_run.database}); {over} of {len(paced)} over",
                )
            )
    by_key = {(run.database, run.scenario, run.connections): run for run in closed}
    for (database, scenario, connections), search in by_key.items():
        listed = by_key.get((database, "heavy_list_students", connections))
        if scenario != "heavy_search" or listed is None:
            continue
        ratio = search.p99_ms / listed.p99_ms
        checks.append(
            (
                f"student search p99 <= {TARGET_SEARCH_OVER_LIST:.0f}x the student list's "
                f"({database} database, {connections} conns)",
                ratio <= TARGET_SEARCH_OVER_LIST,
                f"{ratio:.2f}x ({search.p99_ms:.1f} vs {listed.p99_ms:.1f} ms)",
            )
        )
    return checks


def targets(results: list[RunResult], meta: dict[str, Any]) -> list[tuple[str, bool | None, str]]:
    checks: list[tuple[str, bool | None, str]] = []
    closed = [run for run in results if run.paced_rate is None]
    # The ratios to /healthz are the small database's (the one without --scale).
    by_key = {(run.scenario, run.connections): run for run in closed if run.database == "small"}
    connection_counts = sorted({run.connections for run in closed})
    for key, label, goal in (
        ("get_class", "GET /v1/classes/{id}", TARGET_GET_RATIO),
        ("post_class", "POST /v1/classes", TARGET_POST_RATIO),
    ):
        for connections in connection_counts:
            run = by_key.get((key, connections))
            if run is None or run.ratio_healthz is None:
                continue
            checks.append(
                (
                    f"{label} >= {goal:.0%} of /healthz req/s at {connections} conns",
                    run.ratio_healthz >= goal,
                    f"{run.ratio_healthz:.0%} (vs /healthz/live: {fmt(run.ratio_live, 2)})",
                )
            )
    at_16 = [run for run in closed if run.connections == 16]
    if at_16:
        worst = max(at_16, key=lambda run: run.p99_ms)
        checks.append(
            (
                f"every p99 <= {TARGET_P99_MS_AT_16:.0f} ms at 16 conns",
                worst.p99_ms <= TARGET_P99_MS_AT_16,
                f"worst {worst.p99_ms:.1f} ms ({worst.label})",
            )
        )
    errors = sum(run.errors for run in results)
    checks.append(("zero errors", errors == 0, f"{errors} errors"))
    for run in results:
        if run.event is not None:
            p99 = run.event["p99_ms"]
            ok = run.event["missing"] == 0 and p99 <= TARGET_EVENT_P99_MS
            checks.append(
                (
                    f"event delivery p99 <= {TARGET_EVENT_P99_MS:.0f} ms "
                    f"at {run.connections} conns",
                    ok,
                    f"{fmt(p99)} ms, {run.event['missing']} missing",
                )
            )
    checks += scale_targets(results)
    drained: Backlog | None = meta.get("backlog")
    if drained is not None:
        checks.append(
            (
                f"outbox backlog drained at >= {TARGET_BACKLOG_PER_S:,.0f} change events/s, "
                "every event consumed, per-aggregate order kept",
                drained.drained_per_s >= TARGET_BACKLOG_PER_S
                and drained.consumed >= drained.changes
                and drained.out_of_order == 0
                and drained.parked == 0,
                f"{drained.drained_per_s:,.0f}/s, {drained.consumed:,} of {drained.changes:,} "
                f"consumed, {drained.out_of_order} out of order, {drained.parked} parked",
            )
        )
    checks.append(
        (
            f"service RSS < {TARGET_RSS_MB:.0f} MB",
            meta["rss_peak_mb"] < TARGET_RSS_MB,
            f"{meta['rss_peak_mb']:.1f} MB",
        )
    )
    return checks


# -- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Load the Class Management Service with wrk and print a table."
    )
    parser.add_argument("--quick", action="store_true", help="3 s runs after a 1 s warm-up")
    parser.add_argument("--duration", type=float, default=None, help="seconds per run (10)")
    parser.add_argument("--warmup", type=float, default=None, help="warm-up seconds (2)")
    parser.add_argument("--connections", default="16,64", help="comma-separated (16,64)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated scenarios of {','.join(SCENARIO_KEYS)},import",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a service setting for this run, e.g. LOG_LEVEL=WARNING (prefix optional)",
    )
    parser.add_argument(
        "--serve-command",
        default=None,
        help="serve with this command instead of `python -m services.class_management_service "
        "serve` (for comparing servers)",
    )
    parser.add_argument(
        "--relay-in-process",
        action="store_true",
        help="one process that serves and relays (RELAY_ENABLED=true), instead of the "
        "production topology: the API with RELAY_ENABLED=false plus the `relay` command",
    )
    parser.add_argument(
        "--pg-statements",
        type=int,
        default=0,
        metavar="N",
        help="load pg_stat_statements and print each run's N most expensive statements",
    )
    parser.add_argument(
        "--scale",
        action="store_true",
        help="the heavy teacher's scenarios against a platform-sized database (loaded with "
        "COPY: --students, --classes, --teachers) and against one with the heavy teacher "
        "alone, in the same run; implies --paced",
    )
    shape = PlatformShape()
    for option, default in (
        ("students", shape.students),
        ("classes", shape.classes),
        ("teachers", shape.teachers),
        ("heavy-students", shape.heavy_students),
        ("heavy-classes", shape.heavy_classes),
    ):
        parser.add_argument(
            f"--{option}", type=int, default=default, help=f"with --scale ({default:,})"
        )
    parser.add_argument(
        "--backlog",
        type=int,
        default=None,
        metavar="N",
        help="after the scenarios, N change events written while the broker is down, then "
        "the time to drain them (100,000 with --scale, else none)",
    )
    parser.add_argument(
        "--paced",
        action="store_true",
        help="after each scenario's closed-loop runs, one at a fixed rate of half the most it "
        f"served ({PACED_CONNECTIONS} connections)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    parser.add_argument(
        "--fail-on-miss", action="store_true", help="exit 1 when a target is missed"
    )
    args = parser.parse_args(argv)
    args.duration = args.duration or (3.0 if args.quick else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    args.connection_counts = [int(value) for value in args.connections.split(",") if value]
    wanted = [value for value in args.only.split(",") if value]
    args.imports = not wanted or "import" in wanted  # the class-list import (import_bench)
    unknown = set(wanted) - set(SCENARIO_KEYS) - {"import"}
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    # /healthz is always measured: every ratio is against it.
    chosen = HEAVY_SCENARIOS if args.scale else SCENARIOS
    keys = set(wanted or (scenario.key for scenario in chosen)) | set(REFERENCE_KEYS)
    args.scenarios = [scenario for scenario in SCENARIOS + HEAVY_SCENARIOS if scenario.key in keys]
    if not args.scale and any(scenario in HEAVY_SCENARIOS for scenario in args.scenarios):
        parser.error("the heavy teacher's scenarios need --scale")
    args.paced = args.paced or args.scale
    if args.backlog is None:
        args.backlog = 100_000 if args.scale else 0
    return args


@dataclass
class Database:
    """A database the scenarios run against: ``small`` (today's, or with --scale the heavy
    teacher alone) or ``big`` (--scale: the platform with the heavy teacher)."""

    name: str
    url: str
    description: str


def load_databases(args: argparse.Namespace, stack: Any, env: dict[str, str]) -> list[Database]:
    """The databases of this run, migrated, and with --scale loaded (timed)."""
    import asyncio

    python = [sys.executable, "-m", "services.class_management_service"]
    small = Database("small", stack.create_database("cms_bench"), "seeded through the API")
    if not args.scale:
        databases = [small]
    else:
        heavy = PlatformShape.heavy_only(args.heavy_classes, args.heavy_students)
        platform = PlatformShape(
            args.students, args.classes, args.teachers, args.heavy_classes, args.heavy_students
        )
        small.description = heavy.describe() + ", and the API's seed"
        big = Database(
            "big", stack.create_database("cms_bench_big"), platform.describe() + ", the API's seed"
        )
        databases = [small, big]
    for database in databases:
        log(f"migrating the {database.name} database")
        run_command(
            [*python, "migrate"], env | {f"{SERVICE_PREFIX}DATABASE_URL": database.url}, "migrate"
        )
    if args.scale:
        for database, shape in ((small, heavy), (big, platform)):
            log(f"loading the {database.name} database: {shape.describe()}")
            started = time.monotonic()
            timings = asyncio.run(load_platform(database.url, shape))
            elapsed = time.monotonic() - started
            phases = ", ".join(f"{phase} {seconds:.0f} s" for phase, seconds in timings.items())
            database.description += f" (loaded with COPY in {elapsed:.0f} s: {phases})"
            log(f"loaded the {database.name} database in {elapsed:.0f} s ({phases})")
    return databases


def bench_database(
    args: argparse.Namespace,
    stack: Any,
    database: Database,
    env: dict[str, str],
    serve_command: list[str],
    scratch_dir: Path,
    meta: dict[str, Any],
) -> list[RunResult]:
    """Serve the API (and the relay) on ``database`` and run every scenario against it;
    with --paced, each one also at half the most it served."""
    python = [sys.executable, "-m", "services.class_management_service"]
    env = env | {f"{SERVICE_PREFIX}DATABASE_URL": database.url}
    port = int(env[f"{SERVICE_PREFIX}PORT"])
    base_url = f"http://127.0.0.1:{port}"
    results: list[RunResult] = []
    log_path = scratch_dir / f"service-{database.name}.log"
    with contextlib.ExitStack() as processes:
        relay_pid = None
        if not args.relay_in_process:
            # The outbox relay (it gets no requests), woken through Redis by the API.
            relay_port = free_port()
            relay_pid = processes.enter_context(
                served(
                    [*python, "relay"],
                    env | {f"{SERVICE_PREFIX}PORT": str(relay_port)},
                    f"http://127.0.0.1:{relay_port}",
                    scratch_dir / f"relay-{database.name}.log",
                    what="relay",
                )
            )
        service_pid = processes.enter_context(
            served(serve_command, env, base_url, log_path, what="API")
        )
        log(f"seeding the {database.name} database through the API")
        seeded = seed(base_url)
        if args.scale:
            seed_heavy(base_url, database.url, seeded)

        def run(scenario: Scenario, connections: int, rate: float | None = None) -> RunResult:
            paced = f", paced at {rate:.0f} req/s" if rate is not None else ""
            log(f"[{database.name}] {scenario.label} at {connections} connections{paced}")
            return measure(
                scenario,
                connections,
                args,
                base_url,
                service_pid,
                relay_pid,
                lambda: stack.pids("postgres"),
                stack.kafka_bootstrap,
                database.url,
                seeded,
                scratch_dir,
                database.name,
                rate,
            )

        for scenario in args.scenarios:
            closed = [run(scenario, connections) for connections in args.connection_counts]
            results += closed
            # Paced right after its closed-loop runs, on the data they left.
            if args.paced and scenario.key not in REFERENCE_KEYS:
                most = max(result.rps for result in closed)
                results.append(run(scenario, PACED_CONNECTIONS, rate=most / 2))
        if args.imports:
            log(f"[{database.name}] class-list imports (30 and 1,000 rows)")
            meta.setdefault("imports", []).extend(
                measure_imports(
                    base_url,
                    lambda: cpu_ticks(service_pid) * 1000 / CLOCK_TICKS,
                    database.name,
                )
            )
        if args.backlog and database is args.databases[-1]:
            if relay_pid is None:
                raise SystemExit("--backlog needs the relay process (not --relay-in-process)")
            meta["backlog"] = backlog(
                args, stack, relay_pid, database, env, base_url, seeded, scratch_dir
            )
        # The serving process (the largest one when a wrapper or workers are involved).
        tree = process_tree(service_pid)
        meta["rss_peak_mb"] = max(
            meta.get("rss_peak_mb", 0.0), max(proc_status_kb(pid, "VmHWM") for pid in tree) / 1024
        )
        meta["rss_end_mb"] = max(proc_status_kb(pid, "VmRSS") for pid in tree) / 1024
        if relay_pid is not None:
            meta["relay_rss_peak_mb"] = max(
                meta.get("relay_rss_peak_mb") or 0.0, proc_status_kb(relay_pid, "VmHWM") / 1024
            )
    with open(log_path, "rb") as handle:
        meta["log_lines"] = meta.get("log_lines", 0) + sum(1 for _ in handle)
    meta["log_bytes"] = meta.get("log_bytes", 0) + log_path.stat().st_size
    return results


def backlog(
    args: argparse.Namespace,
    stack: Any,
    relay_pid: int,
    database: Database,
    env: dict[str, str],
    base_url: str,
    seeded: Seed,
    scratch_dir: Path,
) -> Backlog:
    """The outbox backlog of a broker outage (outbox_backlog.py), written by the bench's
    write scenarios in turn."""
    writes = [scenario for scenario in SCENARIOS if scenario.write]
    turns = iter(range(1 << 30))

    def write_for(seconds: float) -> None:
        scenario = writes[next(turns) % len(writes)]
        command = wrk_command(scenario, base_url, 16, seconds, args.threads, seeded, scratch_dir)
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise SystemExit(f"wrk failed: {shlex.join(command)}\n{completed.stderr}")

    python = [sys.executable, "-m", "services.class_management_service"]
    return measure_backlog(
        args.backlog,
        stack,
        relay_pid,
        database.url,
        pg_query,
        write_for,
        lambda: run_command([*python, "create-topics"], env, "create-topics"),
        log,
    )


def backlog_report(meta: dict[str, Any]) -> list[str]:
    drained: Backlog | None = meta.get("backlog")
    if drained is None:
        return []
    return [
        "",
        f"Outbox backlog: {drained.changes:,} change events ({drained.rows:,} outbox rows with "
        f"the state records) written in {drained.write_s:.0f} s while the broker was stopped, "
        "then the broker back (empty; topics created again):",
        "",
        "| first published s | outbox empty s | last change consumed s | change events/s "
        "| consumed | out of order | parked |",
        "|--:|--:|--:|--:|--:|--:|--:|",
        f"| {fmt(drained.first_published_s)} | {fmt(drained.empty_s)} "
        f"| {fmt(drained.last_consumed_s)} | {drained.drained_per_s:.0f} | {drained.consumed:,} "
        f"| {drained.out_of_order} | {drained.parked} |",
        "",
        "(seconds from the broker's return; events/s from the first publication to the last "
        "change consumed; per topic: "
        + ", ".join(f"{topic} {count:,}" for topic, count in drained.per_topic.items())
        + ")",
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: run `make setup` (or apt-get install wrk)")
    began = time.monotonic()
    meta: dict[str, Any] = {
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "load_before": load_average(),
        "pytest_seen": busy_pytest(),
        "duration": args.duration,
        "warmup": args.warmup,
        "wrk_threads": args.threads,
        "postgres_settings": postgres_settings(args.pg_statements > 0, args.scale),
    }
    results: list[RunResult] = []
    with (
        tempfile.TemporaryDirectory(prefix="cms-bench-") as scratch,
        local_stack(meta["postgres_settings"]) as stack,
    ):
        scratch_dir = Path(scratch)
        port = free_port()
        env = service_env(stack, "", port, args.env)
        # As compose runs it: the loaded API process does not relay, the `relay` one does.
        env[f"{SERVICE_PREFIX}RELAY_ENABLED"] = "true" if args.relay_in_process else "false"
        python = [sys.executable, "-m", "services.class_management_service"]
        databases = args.databases = load_databases(args, stack, env)
        env[f"{SERVICE_PREFIX}DATABASE_URL"] = databases[0].url
        meta["databases"] = {database.name: database.description for database in databases}
        log("creating topics")
        run_command([*python, "create-topics"], env, "create-topics")
        if args.pg_statements:
            for database in databases:
                pg_query(database.url, "CREATE EXTENSION pg_stat_statements")
        serve_command = (
            shlex.split(args.serve_command) if args.serve_command else [*python, "serve"]
        )
        meta["serve_command"] = (
            args.serve_command or "python -m services.class_management_service serve"
        )
        meta["relay"] = (
            "in the API process (--relay-in-process)"
            if args.relay_in_process
            else "`python -m services.class_management_service relay`, a process of its own "
            "(as in docker-compose.services.yml)"
        )
        meta["relay_rss_peak_mb"] = None
        meta["settings"] = ", ".join(
            f"{key.removeprefix(SERVICE_PREFIX)}={env[key]}"
            for key in sorted(env)
            if key.startswith(SERVICE_PREFIX)
            and not key.endswith(("_URL", "_SERVERS", "HOST", "PORT"))
        )
        for database in databases:
            results += bench_database(args, stack, database, env, serve_command, scratch_dir, meta)
    imports = meta.pop("imports", [])  # bench_database's, per database
    meta["log_bytes_per_request"] = meta.pop("log_bytes") / max(
        sum(run.requests for run in results), 1
    )
    reference = {
        (run.database, run.scenario, run.connections): run.rps
        for run in results
        if run.scenario in REFERENCE_KEYS and run.paced_rate is None
    }
    for run in results:
        healthz = reference.get((run.database, "healthz", run.connections))
        live = reference.get((run.database, "live", run.connections))
        run.ratio_healthz = run.rps / healthz if healthz else None
        run.ratio_live = run.rps / live if live else None
    meta["load_after"] = load_average()
    meta["elapsed_s"] = time.monotonic() - began
    print(report(results, meta))
    if imports:
        print(import_report(imports))
    checks = targets(results, meta) + import_targets(imports)
    print("\nTargets:")
    for name, ok, detail in checks:
        print(f"- [{'PASS' if ok else 'MISS'}] {name}: {detail}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "meta": meta,
                    "results": [asdict(run) for run in results],
                    "imports": [asdict(run) for run in imports],
                },
                indent=2,
                default=lambda value: asdict(value) if isinstance(value, Backlog) else str(value),
            )
        )
    missed = any(ok is False for _, ok, _ in checks)
    return 1 if missed and args.fail_on_miss else 0


if __name__ == "__main__":
    sys.exit(main())
