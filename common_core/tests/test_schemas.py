"""The committed JSON Schemas (common_core/schemas) are current and compatible."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from common_core.events.compatibility import breaking_changes_between_sets
from common_core.events.schemas import (
    SCHEMA_DIR,
    committed_schemas,
    current_schemas,
    main,
    render,
)
from common_core.events.topics import TOPICS

REPO_ROOT = Path(__file__).resolve().parents[2]
HOW_TO_FIX = "run: uv run python -m common_core.events.schemas write"


def test_the_schema_folder_is_the_source_trees() -> None:
    assert SCHEMA_DIR == REPO_ROOT / "common_core" / "schemas"


def test_every_event_has_a_committed_schema_equal_to_what_its_models_generate() -> None:
    committed = {path.name: path.read_text(encoding="utf-8") for path in SCHEMA_DIR.glob("*.json")}
    current = {f"{name}.json": render(schema) for name, schema in current_schemas().items()}

    assert set(committed) == {f"{spec.event_class.__name__}.json" for spec in TOPICS}
    for name, text in current.items():
        assert committed.get(name) == text, f"{name} is stale; {HOW_TO_FIX}"


def test_the_current_models_do_not_break_a_consumer_of_the_committed_schemas() -> None:
    breaks = breaking_changes_between_sets(committed_schemas(), current_schemas())

    assert [str(b) for b in breaks] == []


def test_each_schema_is_the_envelope_with_its_events_data() -> None:
    for spec in TOPICS:
        schema = committed_schemas()[spec.event_class.__name__]
        assert {"event_id", "event_type", "data", "schema_version"} <= set(schema["properties"])
        assert schema["properties"]["data"] == {"$ref": f"#/$defs/{spec.event_class.__name__}"}
        assert spec.name in schema["description"]
        data = schema["$defs"][spec.event_class.__name__]
        assert set(data["properties"]) == set(spec.event_class.model_fields)


def test_the_check_command_passes_on_the_committed_schemas() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "common_core.events.schemas", "check"],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert (result.returncode, result.stderr) == (0, "")


def test_write_refuses_a_breaking_change_and_check_reports_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A committed schema with a field the models no longer have: a removed field."""
    folder = tmp_path / "schemas"
    shutil.copytree(SCHEMA_DIR, folder)
    path = folder / "ClassDeletedV1.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    schema["$defs"]["ClassDeletedV1"]["properties"]["reason"] = {"type": "string"}
    path.write_text(render(schema), encoding="utf-8")

    assert main(["write", str(folder)]) == 1
    assert main(["check", str(folder)]) == 1
    errors = capsys.readouterr().err
    assert "breaking: ClassDeletedV1.data.reason: removed: field removed or renamed" in errors
    assert "not written" in errors
    assert f"stale: {path}" in errors
    assert json.loads(path.read_text(encoding="utf-8")) == schema  # left as it was

    assert main(["write", str(folder), "--allow-breaking"]) == 0
    assert main(["check", str(folder)]) == 0


def test_write_creates_every_file_and_an_event_removed_is_a_break(tmp_path: Path) -> None:
    assert main(["write", str(tmp_path / "new")]) == 0
    assert sorted(p.stem for p in (tmp_path / "new").glob("*.json")) == sorted(current_schemas())

    (tmp_path / "new" / "GoneV1.json").write_text("{}", encoding="utf-8")
    assert main(["write", str(tmp_path / "new")]) == 1
    assert main(["write", str(tmp_path / "new"), "--allow-breaking"]) == 0
    assert not (tmp_path / "new" / "GoneV1.json").exists()
