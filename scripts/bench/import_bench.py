"""The class-list import, timed as a teacher meets it: one CSV file after another.

``run_bench.py`` calls ``measure_imports`` after its wrk scenarios (``--only import`` runs
it alone). Each import posts a ``;``-separated CSV file with Swedish headers, as a Swedish
spreadsheet exports it, of new students (a unique e-mail each, so every row is created) into
a class of its own, one request at a time: the latency of one import, not of a queue. The
API process's CPU per import is read around the requests.

    uv run python scripts/bench/run_bench.py --only import
"""

from __future__ import annotations

import json
import statistics
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass

IMPORTER = "bench-importer"
# (rows per file, imports): p50 and p99 over this many, after one warm-up import each.
IMPORT_SIZES = ((30, 60), (1000, 20))
TARGET_P99_MS = {30: 50.0, 1000: 1000.0}
FIRST_NAMES = ("Åsa", "Björn", "Ängla", "Örjan", "Karl Johan", "Eva", "Linnéa", "Ali")
LAST_NAMES = ("Öberg", "Lind", "Åkesson", "Berg", "de Wit", "Ärlig", "Nguyen", "Zetterberg")


@dataclass
class ImportRun:
    database: str
    rows: int
    imports: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    api_cpu_ms: float  # per import


def csv_file(rows: int, tag: str) -> bytes:
    """A class list of ``rows`` new students, as a Swedish spreadsheet exports it."""
    lines = ["\ufeff" + "förnamn;efternamn;e-post"]  # with the BOM Excel writes
    for n in range(rows):
        first = FIRST_NAMES[n % len(FIRST_NAMES)]
        last = LAST_NAMES[(n // len(FIRST_NAMES)) % len(LAST_NAMES)]
        lines.append(f"{first};{last};elev-{tag}-{n}@skola.example.se")
    return ("\n".join(lines) + "\n").encode()


def _post(url: str, body: bytes, content_type: str, user: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("X-User-ID", user)
    request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _new_class(base_url: str, name: str) -> str:
    body = f'{{"name": "{name}", "course_codes": ["SV1"]}}'.encode()
    status, raw = _post(base_url + "/v1/classes", body, "application/json", IMPORTER)
    if status != 201:
        raise SystemExit(f"POST /v1/classes: {status} {raw[:300]!r}")
    return str(json.loads(raw)["id"])


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure_imports(
    base_url: str, api_cpu_ms: Callable[[], float], database: str
) -> list[ImportRun]:
    """Each size's imports, one after another, each into a class of its own;
    ``api_cpu_ms()`` is the API process's CPU time so far."""
    results = []
    for rows, imports in IMPORT_SIZES:
        took: list[float] = []
        cpu = 0.0
        for n in range(imports + 1):  # the first warms up (prepared statements, caches)
            class_id = _new_class(base_url, f"Import {rows} {n}")
            body = csv_file(rows, uuid.uuid4().hex[:12])
            url = f"{base_url}/v1/classes/{class_id}/students/import"
            cpu_before = api_cpu_ms()
            began = time.perf_counter()
            status, raw = _post(url, body, "text/csv", IMPORTER)
            elapsed = (time.perf_counter() - began) * 1000
            if status != 200 or f'"created":{rows}'.encode() not in raw.replace(b" ", b""):
                raise SystemExit(f"import of {rows} rows: {status} {raw[:300]!r}")
            if n:
                took.append(elapsed)
                cpu += api_cpu_ms() - cpu_before
        results.append(
            ImportRun(
                database=database,
                rows=rows,
                imports=imports,
                p50_ms=statistics.median(took),
                p99_ms=_percentile(took, 0.99),
                max_ms=max(took),
                api_cpu_ms=cpu / imports,
            )
        )
    return results


def import_report(results: list[ImportRun]) -> str:
    lines = [
        "",
        "Class-list import (CSV, `;`, Swedish headers, new students; one request at a time):",
        "",
        "| database | rows | imports | p50 ms | p99 ms | max ms | API CPU ms per import |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for run in results:
        lines.append(
            f"| {run.database} | {run.rows:,} | {run.imports} | {run.p50_ms:.1f} "
            f"| {run.p99_ms:.1f} | {run.max_ms:.1f} | {run.api_cpu_ms:.1f} |"
        )
    return "\n".join(lines)


def import_targets(results: list[ImportRun]) -> list[tuple[str, bool | None, str]]:
    return [
        (
            f"import of {run.rows:,} rows p99 <= {TARGET_P99_MS[run.rows]:.0f} ms ({run.database})",
            run.p99_ms <= TARGET_P99_MS[run.rows],
            f"{run.p99_ms:.1f} ms",
        )
        for run in results
        if run.rows in TARGET_P99_MS
    ]
