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

from common_core.enums import CourseCode  # noqa: E402
from common_core.events.class_events import (  # noqa: E402
    ClassCreatedV1,
    ClassDeletedV1,
    ClassUpdatedV1,
    StudentCreatedV1,
    StudentDeletedV1,
    StudentUpdatedV1,
)

CLASS_ID = UUID("6f1c7a52-3a5e-4c4e-9f39-0d4f2b1d9a01")
OTHER_CLASS_ID = UUID("0b8e2c3d-6a7f-4e21-8c55-7e3d9f1a2b02")
STUDENT_ID = UUID("c2d9e8f7-1b2a-4c3d-8e4f-5a6b7c8d9e03")


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
    )


def _class_deleted() -> ClassDeletedV1:
    return ClassDeletedV1(class_id=CLASS_ID, user_id="teacher-1", version=3)


def _student_created() -> StudentCreatedV1:
    return StudentCreatedV1(
        student_id=STUDENT_ID,
        first_name="Åsa",
        last_name="Öberg",
        student_email="asa.oberg@example.com",
        class_ids=[CLASS_ID, OTHER_CLASS_ID],
        created_by_user_id="teacher-1",
        version=1,
    )


def _student_updated() -> StudentUpdatedV1:
    return StudentUpdatedV1(
        student_id=STUDENT_ID,
        last_name="Berg",
        add_class_ids=[OTHER_CLASS_ID],
        remove_class_ids=[CLASS_ID],
        updated_by_user_id="teacher-2",
        version=2,
    )


def _student_deleted() -> StudentDeletedV1:
    return StudentDeletedV1(student_id=STUDENT_ID, user_id="teacher-2", version=3)


SAMPLE_FACTORIES: dict[type[BaseModel], Callable[[], BaseModel]] = {
    ClassCreatedV1: _class_created,
    ClassUpdatedV1: _class_updated,
    ClassDeletedV1: _class_deleted,
    StudentCreatedV1: _student_created,
    StudentUpdatedV1: _student_updated,
    StudentDeletedV1: _student_deleted,
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
