"""An invalid setting ends every command with one line naming the full variable, the
value's problem and what is accepted, exit code 2 and no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.class_management_service.__main__ import main
from services.class_management_service.config import ENV_PREFIX, Settings
from services.class_management_service.tests.support.service_process import REPO_ROOT

INVALID = [
    ("PORT", "abc", "a whole number"),
    ("PORT", "99999", "less than or equal to 65535"),
    ("LOG_FORMAT", "xml", "'text' or 'json'"),
    ("RELAY_ENABLED", "maybe", "true, false"),
    ("LOG_LEVEL", "verbose", "DEBUG"),
    ("DATABASE_URL", "mysql://cms:secret@db:3306/cms", "postgresql://"),
    ("DATABASE_URL", "not a url", "postgresql://"),
]


@pytest.mark.parametrize(("name", "value", "accepted"), INVALID)
@pytest.mark.parametrize("command", ["serve", "relay", "migrate", "create-topics"])
def test_an_invalid_setting_is_one_line_and_exit_code_2(
    command: str,
    name: str,
    value: str,
    accepted: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(ENV_PREFIX + name, value)
    assert main([command]) == 2
    out, err = capsys.readouterr()
    (line,) = err.splitlines()
    assert out == ""
    assert line.startswith(f"{command}: invalid setting {ENV_PREFIX}{name}=")
    assert accepted in line
    assert "secret" not in line


def test_every_invalid_setting_gets_its_own_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(ENV_PREFIX + "PORT", "0")
    monkeypatch.setenv(ENV_PREFIX + "LOG_LEVEL", "loud")
    assert main(["serve"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert [line.split("=")[0] for line in lines] == [
        f"serve: invalid setting {ENV_PREFIX}PORT",
        f"serve: invalid setting {ENV_PREFIX}LOG_LEVEL",
    ]


def test_log_level_is_case_insensitive_and_stored_upper_case() -> None:
    assert Settings(LOG_LEVEL=" debug ").LOG_LEVEL == "DEBUG"


def test_the_real_entry_point_prints_no_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "services.class_management_service", "serve"],
        cwd=REPO_ROOT,
        env={ENV_PREFIX + "PORT": "abc", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"serve: invalid setting {ENV_PREFIX}PORT='abc': Input should be a valid integer,"
        " unable to parse string as an integer; accepted: a whole number"
    ]
