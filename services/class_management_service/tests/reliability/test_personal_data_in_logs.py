"""A real ``serve`` process, logging at DEBUG, through a scenario that touches every kind of
personal data and the usual errors: its log names no student, no e-mail and no database
password."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from services.class_management_service.config import Settings
from services.class_management_service.tests.support.service_process import (
    ServiceProcess,
    service_env,
)
from services.class_management_service.tests.support.tokens import (
    JWT_SETTINGS,
    BearerFromUserHeader,
)

pytestmark = pytest.mark.timeout(180)

PASSWORD = f"pw-{uuid.uuid4().hex}"
FIRST, LAST = "Zebulon", f"Quixotewright{uuid.uuid4().hex[:6]}"
EMAIL = f"zeb.{uuid.uuid4().hex[:8]}@pupils.example.org"


def _with_password(url: str) -> str:
    """The same database with a password in its URL (the local server trusts loopback
    connections, so it is sent and ignored: it can only show up by leaking)."""
    parts = urlsplit(url)
    netloc = f"{parts.username or 'postgres'}:{PASSWORD}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
def logged_cms(
    database_factory: Any, migrated_template: str, redis_url: str, kafka_bootstrap: str,
    tmp_path: Path,
) -> Any:  # fmt: skip
    name = database_factory.unique_name("cms_logs")
    url = Settings(DATABASE_URL=database_factory.create(name, template=migrated_template))
    env = service_env(
        _with_password(url.DATABASE_URL), redis_url, kafka_bootstrap,
        LOG_LEVEL="DEBUG", **JWT_SETTINGS,
    )  # fmt: skip
    process = ServiceProcess(env, tmp_path / "cms.log", name="logged-cms")
    process.start(timeout=120)  # generous: the suite loads the machine
    try:
        yield process
    finally:
        process.stop()
        database_factory.drop(name)


async def test_the_log_of_a_scenario_names_no_student_email_or_password(logged_cms) -> None:
    teacher = {"X-User-ID": f"teacher-{uuid.uuid4().hex[:8]}"}
    person = {"first_name": FIRST, "last_name": LAST}
    async with httpx.AsyncClient(
        base_url=logged_cms.base_url, auth=BearerFromUserHeader(), timeout=15
    ) as client:
        created = await client.post(
            "/v1/classes", json={"name": "9A", "course_codes": ["ENG5"]}, headers=teacher
        )
        assert created.status_code == 201, created.text
        class_id = created.json()["id"]
        student = await client.post(
            "/v1/classes/students",
            json={"person_name": person, "email": EMAIL, "class_ids": [class_id]},
            headers=teacher,
        )
        assert student.status_code == 201, student.text
        student_id = student.json()["id"]
        replies = [
            # the same e-mail again: the unique index's IntegrityError
            await client.post(
                "/v1/classes/students", json={"person_name": person, "email": EMAIL},
                headers=teacher,
            ),
            # a name with a bidirectional override, a body that is not JSON
            await client.post(
                "/v1/classes/students",
                json={"person_name": {**person, "first_name": FIRST + "\u202e" + "x"}},
                headers=teacher,
            ),
            await client.post(
                "/v1/classes/students", content=f'{{"person_name": "{FIRST}"',
                headers={**teacher, "Content-Type": "application/json"},
            ),
            await client.put(
                f"/v1/classes/students/{student_id}",
                json={"person_name": {"first_name": FIRST, "last_name": LAST + "s"}},
                headers={**teacher, "If-Match": '"9"'},
            ),
            await client.get(f"/v1/classes/{class_id}/roster", headers=teacher),
            await client.get("/v1/classes/students", headers=teacher),
            await client.delete(f"/v1/classes/students/{student_id}", headers=teacher),
            await client.get("/healthz"),
        ]  # fmt: skip
        assert [r.status_code for r in replies] == [409, 400, 400, 412, 200, 200, 204, 200]
    logged_cms.stop()
    log = logged_cms.log_text()
    assert "POST /v1/classes/students 409" in log, log[-2000:]  # the scenario was logged
    for secret in (FIRST, LAST, EMAIL, EMAIL.split("@")[0], PASSWORD):
        assert secret not in log, f"{secret!r} is in the log:\n{log[-3000:]}"
