"""Small process helpers shared by LocalStack and its watchdog (stdlib only, Linux /proc)."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterable
from pathlib import Path


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (held open together while chosen)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (free when chosen: bind it soon)."""
    return free_ports(1)[0]


def port_accepts(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def log_tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file, or a note that it is missing."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 16384))
            text = handle.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"(no log at {path}: {exc.strerror})"
    tail = "\n".join(text.splitlines()[-lines:])
    return f"--- last lines of {path} ---\n{tail or '(empty)'}"


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return not Path("/proc").is_dir() or Path(f"/proc/{pid}").exists()
    # Field 3 (after the parenthesised command name) is the state; Z = zombie, X = dead.
    state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
    return state not in (b"Z", b"X")


def pids_with_cwd_under(root: str | os.PathLike[str]) -> list[int]:
    """Processes whose working directory is ``root`` or below (deleted dirs included).

    Every LocalStack process runs with its cwd inside the stack's temp dir
    (PostgreSQL and Redis chdir to their data dirs there), so this finds them all,
    postgres' child processes included, and nothing else.
    """
    prefix = os.path.realpath(root).rstrip("/")
    found: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        cwd = cwd.removesuffix(" (deleted)")
        if (cwd == prefix or cwd.startswith(prefix + "/")) and pid_alive(int(entry)):
            found.append(int(entry))
    return sorted(found)


def signal_pids(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def wait_pids_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait until the pids are gone; return those still alive at the deadline."""
    remaining = list(pids)
    deadline = time.monotonic() + timeout
    while remaining:
        remaining = [pid for pid in remaining if pid_alive(pid)]
        if not remaining or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return remaining


def read_postmaster_pid(data_dir: Path) -> int | None:
    try:
        first = (data_dir / "postmaster.pid").read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first) if first.isdigit() else None


def kill_tree_under(root: str | os.PathLike[str], postmaster_pid: int | None = None) -> None:
    """Stop every process running under ``root``: polite signal, then SIGKILL.

    The postmaster gets SIGQUIT (immediate shutdown, which also releases its
    shared memory); everything else SIGTERM.
    """
    pids = pids_with_cwd_under(root)
    if postmaster_pid is not None and pid_alive(postmaster_pid):
        signal_pids([postmaster_pid], signal.SIGQUIT)
    signal_pids([pid for pid in pids if pid != postmaster_pid], signal.SIGTERM)
    left = wait_pids_gone(set(pids) | ({postmaster_pid} if postmaster_pid else set()), 5.0)
    if left:
        signal_pids(left, signal.SIGKILL)
        wait_pids_gone(left, 5.0)
    stragglers = pids_with_cwd_under(root)
    if stragglers:
        signal_pids(stragglers, signal.SIGKILL)
        wait_pids_gone(stragglers, 5.0)
