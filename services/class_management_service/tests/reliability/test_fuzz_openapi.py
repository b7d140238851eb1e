"""Fuzzing every operation of the OpenAPI document with schemathesis, against the served app.

Each operation gets schema-valid requests (positive), schema-invalid ones (negative), and
positive ones aimed at resources that really exist (so that reads, updates, deletes and
essay links get past the 404). For every response:

* no 5xx (``not_a_server_error``);
* its status is documented for the operation (``status_code_conformance``);
* its body conforms to the schema documented for that status (``response_schema_conformance``,
  problem bodies included: they are documented as ``application/problem+json``), and a
  problem is served with that media type and names its own status;
* a schema-invalid request is rejected with a 4xx (``negative_data_rejection``).

The precision of the request schemas (schemathesis' ``positive_data_acceptance``) is not
gated on: what the document promises is checked in test_openapi_contract.py.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.class_management_service.tests.reliability.conftest import ServedCms
from services.class_management_service.tests.support.api import (
    PROBLEM_CONTENT_TYPE,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

# The same examples on every run (a stable CI); CMS_FUZZ_EXPLORE=1 draws new ones each run.
EXPLORE = os.environ.get("CMS_FUZZ_EXPLORE") == "1"
EXAMPLES_PER_OPERATION = int(os.environ.get("CMS_FUZZ_EXAMPLES", "40"))
MIN_REQUESTS = 13 * EXAMPLES_PER_OPERATION  # 13 operations, some under two paths


def _seed(base_url: str, owner: str) -> dict[str, list[str]]:
    """Classes and students of ``owner`` for the fuzzer to aim at."""
    headers = {"X-User-ID": owner}
    ids: dict[str, list[str]] = {"class_id": [], "student_id": []}
    with httpx.Client(base_url=base_url, timeout=10) as client:
        for index in range(10):
            response = client.post(
                "/v1/classes",
                json={"name": f"fuzz {index}", "course_codes": ["ENG5"]},
                headers=headers,
            )
            assert response.status_code == 201, response.text
            ids["class_id"].append(response.json()["id"])
        for index in range(10):
            response = client.post(
                "/v1/classes/students",
                json={
                    "person_name": {"first_name": "F", "last_name": f"Z{index}"},
                    "class_ids": ids["class_id"][:2],
                },
                headers=headers,
            )
            assert response.status_code == 201, response.text
            ids["student_id"].append(response.json()["id"])
    return ids


def check_problem(case: Case, response: Any) -> None:
    """A 4xx or 5xx is a problem (its body is validated by response_schema_conformance)."""
    if response.status_code < 400:
        return
    where = f"{case.method} {case.formatted_path} -> {response.status_code}"
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith(PROBLEM_CONTENT_TYPE), f"{where}: {content_type}"
    body = json.loads(response.content)
    assert body["status"] == response.status_code, f"{where}: {body}"


def test_every_operation_survives_fuzzing(served_cms: ServedCms) -> None:
    owner = f"fuzzer-{uuid.uuid4().hex[:8]}"
    existing = _seed(served_cms.base_url, owner)
    schema = schemathesis.openapi.from_url(served_cms.base_url + "/openapi.json", timeout=10)
    schema.config.update(base_url=served_cms.base_url)

    sent = 0
    statuses: dict[int, int] = {}
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 13, [op.label for op in operations]
    for operation in operations:
        names = {parameter.name for parameter in operation.path_parameters}
        strategies = [
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        ]
        aimed = {name: st.sampled_from(existing[name]) for name in names if name in existing}
        if aimed:
            strategies.append(
                st.fixed_dictionaries(aimed).flatmap(
                    lambda path, operation=operation: operation.as_strategy(
                        GenerationMode.POSITIVE, path_parameters=path
                    )
                )
            )

        @given(case=st.one_of(strategies))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=not EXPLORE,
            phases=(Phase.explicit, Phase.generate),
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Case) -> None:
            nonlocal sent
            # The gateway always sets X-User-ID: the fuzzer acts as the owner of the seeded
            # data. Set on the case itself, so that schemathesis re-judges whether the case is
            # still schema-invalid (and negative_data_rejection stays accurate).
            headers = {**(case.headers or {}), "X-User-ID": owner}
            case.headers = headers
            response = case.call(timeout=10)
            sent += 1
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            case.validate_response(
                response,
                checks=[
                    not_a_server_error,
                    status_code_conformance,
                    response_schema_conformance,
                    response_headers_conformance,
                    negative_data_rejection,
                ],
            )
            check_problem(case, response)

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as error:  # report every operation's failure
            failures[operation.label] = str(error)[:3000]

    assert not failures, "\n\n".join(f"== {label}\n{text}" for label, text in failures.items())
    assert sent >= MIN_REQUESTS, sent
    print(f"{sent} requests over {len(operations)} operations; statuses {sorted(statuses.items())}")
