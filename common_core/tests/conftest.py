"""Shared fixtures: one valid sample of every event class."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from uuid import UUID

import pytest
from pydantic import BaseModel


def _use_the_installed_common_core() -> None:
    """Undo pytest's shadowing of the real ``common_core`` package.

    With ``--import-mode=importlib`` and no ``__init__.py`` in this folder, pytest imports this
    file as ``common_core.tests.conftest`` and, unless ``common_core`` was imported before,
    registers the *folder* ``<repo>/common_core`` as a namespace package named ``common_core``,
    hiding the installed package in ``common_core/src``. Swap the real package back in.
    """
    module = sys.modules.get("common_core")
    if module is None or getattr(module, "__file__", None) is not None:
        return
    del sys.modules["common_core"]
    real = importlib.import_module("common_core")
    tests_module = sys.modules.get("common_core.tests")
    if tests_module is not None:
        real.tests = tests_module  # type: ignore[attr-defined]


_use_the_installed_common_core()

from datetime import UTC, datetime  # noqa: E402

from common_core.enums import ClassStatus, CourseCode  # noqa: E402
from common_core.events.class_events import (  # noqa: E402
    ClassCreatedV1,
    ClassDeletedV1,
    ClassPreviousV1,
    ClassUpdatedV1,
    StudentCreatedV1,
    StudentDeletedV1,
    StudentPreviousV1,
    StudentUpdatedV1,
)
from common_core.events.essay_events import EssayLinkedV1, EssayUnlinkedV1  # noqa: E402
from common_core.events.state_events import ClassStateV1, StudentStateV1  # noqa: E402

CLASS_ID = UUID("6f1c7a52-3a5e-4c4e-9f39-0d4f2b1d9a01")
OTHER_CLASS_ID = UUID("0b8e2c3d-6a7f-4e21-8c55-7e3d9f1a2b02")
STUDENT_ID = UUID("c2d9e8f7-1b2a-4c3d-8e4f-5a6b7c8d9e03")
ESSAY_ID = UUID("a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c05")
LINKED_AT = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


def _class_created() -> ClassCreatedV1:
    return ClassCreatedV1(
        class_id=CLASS_ID,
        class_designation="9A",
        course_codes=[CourseCode.ENG5, CourseCode.SV1],
        user_id="teacher-1",
        version=1,
    )


def _class_updated() -> ClassUpdatedV1:
    return ClassUpdatedV1(
        class_id=CLASS_ID,
        class_designation="9B",
        course_codes=[CourseCode.ENG6],
        user_id="teacher-1",
        version=2,
        student_count=1,
        status=ClassStatus.ACTIVE,
        previous=ClassPreviousV1(class_designation="9A", course_codes=[CourseCode.ENG5]),
    )


def _class_deleted() -> ClassDeletedV1:
    return ClassDeletedV1(class_id=CLASS_ID, user_id="teacher-1", version=3)


def _student_created() -> StudentCreatedV1:
    return StudentCreatedV1(
        student_id=STUDENT_ID,
        first_name="Åsa",
        last_name="Öberg",
        student_email="asa.oberg@example.com",
        class_ids=[OTHER_CLASS_ID, CLASS_ID],
        created_by_user_id="teacher-1",
        version=1,
        legal_full_name="Åsa Öberg",
    )


def _student_updated() -> StudentUpdatedV1:
    return StudentUpdatedV1(
        student_id=STUDENT_ID,
        first_name="Åsa",
        last_name="Berg",
        legal_full_name="Åsa Öberg",
        student_email=None,
        class_ids=[OTHER_CLASS_ID],
        add_class_ids=[OTHER_CLASS_ID],
        remove_class_ids=[CLASS_ID],
        updated_by_user_id="teacher-2",
        version=2,
        previous=StudentPreviousV1(
            last_name="Öberg", student_email="asa.oberg@example.com", class_ids=[CLASS_ID]
        ),
    )


def _student_deleted() -> StudentDeletedV1:
    return StudentDeletedV1(student_id=STUDENT_ID, user_id="teacher-2", version=3)


def _essay_linked() -> EssayLinkedV1:
    return EssayLinkedV1(
        essay_id=ESSAY_ID, student_id=STUDENT_ID, user_id="teacher-1", linked_at=LINKED_AT
    )


def _essay_unlinked() -> EssayUnlinkedV1:
    return EssayUnlinkedV1(
        essay_id=ESSAY_ID, student_id=STUDENT_ID, user_id="teacher-1", unlinked_at=LINKED_AT
    )


def _class_state() -> ClassStateV1:
    return ClassStateV1(
        class_id=CLASS_ID,
        class_designation="9B",
        course_codes=[CourseCode.ENG6],
        user_id="teacher-1",
        version=2,
        student_count=1,
        status=ClassStatus.ACTIVE,
    )


def _student_state() -> StudentStateV1:
    return StudentStateV1(
        student_id=STUDENT_ID,
        first_name="Åsa",
        last_name="Berg",
        legal_full_name="Åsa Öberg",
        student_email=None,
        class_ids=[OTHER_CLASS_ID],
        created_by_user_id="teacher-1",
        version=2,
    )


SAMPLE_FACTORIES: dict[type[BaseModel], Callable[[], BaseModel]] = {
    ClassCreatedV1: _class_created,
    ClassUpdatedV1: _class_updated,
    ClassDeletedV1: _class_deleted,
    StudentCreatedV1: _student_created,
    StudentUpdatedV1: _student_updated,
    StudentDeletedV1: _student_deleted,
    EssayLinkedV1: _essay_linked,
    EssayUnlinkedV1: _essay_unlinked,
    ClassStateV1: _class_state,
    StudentStateV1: _student_state,
}


@pytest.fixture(params=list(SAMPLE_FACTORIES), ids=lambda cls: cls.__name__)
def sample_event(request: pytest.FixtureRequest) -> BaseModel:
    """A valid instance of each event class in turn."""
    event_cls: type[BaseModel] = request.param
    return SAMPLE_FACTORIES[event_cls]()


@pytest.fixture
def all_sample_events() -> list[BaseModel]:
    """One valid instance of every event class."""
    return [factory() for factory in SAMPLE_FACTORIES.values()]
