"""A client generated from /openapi.json (openapi-python-client, as the gateway team would)
drives the real ``serve`` process: create, list, get, update with If-Match, delete.

The generator must give no warning: each one is a piece of the API it could not represent
(an error response dropped, a header left out, a model duplicated).
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from services.class_management_service.tests.reliability.conftest import ServedCms

pytestmark = pytest.mark.timeout(180)

PACKAGE = "cms_generated_client"


@pytest.fixture(scope="module")
def generated(served_cms: ServedCms, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The generated package's directory (on sys.path while the module's tests run)."""
    root = tmp_path_factory.mktemp("generated_client")
    document = httpx.get(served_cms.base_url + "/openapi.json", timeout=10).json()
    (root / "openapi.json").write_text(json.dumps(document))
    # No post hooks: formatting the output is not the test's business. The generator reads
    # JSON, form and octet-stream bodies; its documented override has it send a CSV file
    # (the class-list import) as bytes.
    (root / "config.yaml").write_text(
        "post_hooks: []\ncontent_type_overrides:\n  text/csv: application/octet-stream\n"
    )
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("openapi-python-client")),
            "generate",
            "--path",
            str(root / "openapi.json"),
            "--config",
            str(root / "config.yaml"),
            "--meta",
            "none",
            "--output-path",
            str(root / PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Warning" not in output and "warning" not in output, output
    sys.path.insert(0, str(root))
    try:
        yield root / PACKAGE
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


async def test_a_generated_client_drives_the_served_api(
    generated: Path, served_cms: ServedCms
) -> None:
    client_module = module("client")
    models = module("models")
    create_class = module("api.classes.create_class")
    list_classes = module("api.classes.list_classes")
    get_class = module("api.classes.get_class")
    update_class = module("api.classes.update_class")
    delete_class = module("api.classes.delete_class")
    owner = f"generated-{uuid.uuid4().hex[:8]}"
    client: Any = client_module.Client(base_url=served_cms.base_url, timeout=httpx.Timeout(15))

    async with client:
        created = await create_class.asyncio_detailed(
            client=client,
            body=models.CreateClassRequest(name="9A", course_codes=[models.CourseCode.ENG5]),
            x_user_id=owner,
            idempotency_key=f"create-{owner}",
        )
        assert created.status_code == 201, created.content
        klass = created.parsed
        assert isinstance(klass, models.ClassResponse)
        assert (klass.name, klass.course_code, klass.version) == ("9A", models.CourseCode.ENG5, 1)
        assert created.headers["Location"] == f"/v1/classes/{klass.id}"
        assert created.headers["ETag"] == '"1"'

        listed = await list_classes.asyncio(client=client, x_user_id=owner, limit=10)
        assert isinstance(listed, models.ClassListResponse)
        assert [item.id for item in listed.classes] == [klass.id]
        assert listed.pagination.total == 1

        fetched = await get_class.asyncio_detailed(klass.id, client=client, x_user_id=owner)
        assert isinstance(fetched.parsed, models.ClassResponse)
        assert fetched.parsed.to_dict() == klass.to_dict()
        unchanged = await get_class.asyncio_detailed(
            klass.id, client=client, x_user_id=owner, if_none_match=fetched.headers["ETag"]
        )
        assert (unchanged.status_code, unchanged.content) == (304, b"")

        stale = await update_class.asyncio_detailed(
            klass.id,
            client=client,
            body=models.UpdateClassRequest(name="lost"),
            x_user_id=owner,
            if_match='"7"',
        )
        assert stale.status_code == 412
        assert isinstance(stale.parsed, models.ProblemResponse)
        assert stale.parsed.code == "PRECONDITION_FAILED"
        assert stale.headers["ETag"] == '"1"'
        renamed = await update_class.asyncio(
            klass.id,
            client=client,
            body=models.UpdateClassRequest(name="9B"),
            x_user_id=owner,
            if_match=stale.headers["ETag"],
        )
        assert isinstance(renamed, models.ClassResponse)
        assert (renamed.name, renamed.version) == ("9B", 2)

        deleted = await delete_class.asyncio_detailed(
            klass.id, client=client, x_user_id=owner, if_match='"2"'
        )
        assert deleted.status_code == 204
        gone = await get_class.asyncio(klass.id, client=client, x_user_id=owner)
        assert isinstance(gone, models.ProblemResponse)
        assert (gone.status, gone.code) == (404, "CLASS_NOT_FOUND")
