"""``make run`` as a terminal runs it: ``python -m huleedu_devstack run -- bash
scripts/serve_local.sh`` in a process group of its own.

Ctrl-C reaches the whole foreground group (and an impatient operator presses it twice);
``docker stop`` and service managers send SIGTERM. Either way the service stops through
its own shutdown (no traceback), then the stack, and no process is left. The second run
finds the first one's data (PostgreSQL's data dir is kept, as compose's volume is), and
``make reset`` deletes it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from huleedu_devstack import _procs
from huleedu_devstack.local import default_base_dir

from services.class_management_service.tests.support.service_process import (
    ENV_PREFIX,
    REPO_ROOT,
    free_port,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SERVE_LOCAL = ("bash", "scripts/serve_local.sh")
START_TIMEOUT_SECONDS = 240.0
STOP_TIMEOUT_SECONDS = 120.0


class LocalRun:
    """One ``make run``-style launch, its output in a log file."""

    def __init__(self, tmp_path: Path, stack_dir: Path, data_dir: Path, name: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.base_dir = stack_dir / name
        self.base_dir.mkdir()
        self.data_dir = data_dir
        self.log_path = tmp_path / f"{name}.log"
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith((ENV_PREFIX, "HULEEDU_DEVSTACK_"))
        }
        env |= {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "HULEEDU_DEVSTACK_BACKEND": "local",
            "HULEEDU_DEVSTACK_BASE_DIR": str(self.base_dir),
            "HULEEDU_DEVSTACK_POSTGRES_DATA_DIR": str(data_dir),
            ENV_PREFIX + "PORT": str(self.port),
        }
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "huleedu_devstack", "run", "--", *SERVE_LOCAL],
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.group = self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            assert self.process.poll() is None, f"exited early:\n{self.log()}"
            try:
                if httpx.get(self.base_url + "/healthz/live", timeout=3).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"not serving in time:\n{self.log()}"
            time.sleep(0.25)

    def stop_with(self, signum: int, *, again_while_stopping: bool) -> int:
        """``signum`` to the whole process group, as a terminal sends Ctrl-C; with
        ``again_while_stopping``, once more as soon as the service has begun to stop."""
        os.killpg(self.group, signum)
        if again_while_stopping:
            deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
            while "Shutting down" not in self.log() and self.process.poll() is None:
                assert time.monotonic() < deadline, f"never began to stop:\n{self.log()}"
                time.sleep(0.01)
            try:
                os.killpg(self.group, signum)
            except ProcessLookupError:
                pass  # already gone
        try:
            return self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.group, signal.SIGKILL)
            raise AssertionError(f"still running after {signum}:\n{self.log()}") from None

    def leftovers(self) -> list[int]:
        """Processes of the launch's group, or of its stack (each in a session of its own,
        all with their working directory in the stack's dir or the data dir)."""
        in_group = []
        for entry in os.listdir("/proc"):
            if entry.isdigit() and _procs.pid_alive(int(entry)):
                try:
                    if os.getpgid(int(entry)) == self.group:
                        in_group.append(int(entry))
                except ProcessLookupError:
                    pass
        return (
            in_group
            + _procs.pids_with_cwd_under(self.base_dir)
            + (_procs.pids_with_cwd_under(self.data_dir))
        )

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.group, signal.SIGKILL)
            self.process.wait(timeout=30)


def _check_stopped_gracefully(run: LocalRun, code: int) -> None:
    log = run.log()
    assert code == 0, log
    assert "Class Management Service stopped" in log, log
    assert "Traceback" not in log, log
    assert " ERROR " not in log, log
    assert "CancelledError" not in log, log
    assert run.leftovers() == [], log


@pytest.fixture
def stack_dir() -> Iterator[Path]:
    """A directory the ``postgres`` user can reach when the tests run as root (pytest's
    tmp_path is private to its user)."""
    path = Path(tempfile.mkdtemp(prefix="cms-local-run-", dir=default_base_dir()))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_ctrl_c_and_sigterm_stop_the_service_gracefully_and_the_data_is_kept(
    tmp_path: Path, stack_dir: Path
) -> None:
    data_dir = stack_dir / "data" / "postgres-data"
    headers = {"X-User-ID": f"teacher-{uuid.uuid4().hex[:8]}"}

    first = LocalRun(tmp_path, stack_dir, data_dir, "first")
    try:
        first.wait_serving()
        created = httpx.post(
            first.base_url + "/v1/classes",
            json={"name": "9A", "course_codes": ["ENG5"]},
            headers=headers,
            timeout=30,
        )
        assert created.status_code == 201, created.text
        # Ctrl-C in a terminal, pressed again while the service stops.
        code = first.stop_with(signal.SIGINT, again_while_stopping=True)
    finally:
        first.kill()
    _check_stopped_gracefully(first, code)
    log = first.log()
    assert "Migrated database" in log and "from revision <empty>" in log, log
    assert "topics ready" in log, log

    second = LocalRun(tmp_path, stack_dir, data_dir, "second")
    try:
        second.wait_serving()
        found = httpx.get(
            second.base_url + f"/v1/classes/{created.json()['id']}", headers=headers, timeout=30
        )
        assert found.status_code == 200, found.text
        code = second.stop_with(signal.SIGTERM, again_while_stopping=False)  # docker stop
    finally:
        second.kill()
    _check_stopped_gracefully(second, code)
    assert "is already at revision" in second.log(), second.log()

    reset = subprocess.run(
        ["make", "reset", f"DEVSTACK_DATA={data_dir.parent}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert reset.returncode == 0, reset.stdout + reset.stderr
    assert not data_dir.parent.exists()
