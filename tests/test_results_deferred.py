"""A deferred assessment (built when read) is indistinguishable from one built eagerly."""

from __future__ import annotations

import copy
import pickle
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

import hipscreen
from hipscreen import Assessment
from hipscreen._results import _DeferredAssessment
from tests.strategies import forms

_SCREENER = hipscreen.Screener(cache_size=0)


def _pair(form: dict[str, Any], client_id: str | None = None) -> tuple[Assessment, Assessment]:
    """The assessment `assess` returns (deferred) and the same one built eagerly, unread."""
    deferred = _SCREENER.assess({**form, "client_id": client_id})
    assert type(deferred) is _DeferredAssessment
    eager = deferred._hs_pending.source.build()  # type: ignore[attr-defined]
    assert type(eager) is Assessment
    return deferred, eager


def _outcome(way: Any, result: Assessment) -> Any:
    """What ``way(result)`` gives, or the type of error it raises (a score's ``subscores`` dict
    makes an assessment unhashable, deferred or not)."""
    try:
        return way(result)
    except TypeError as error:
        return type(error), str(error)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(form=forms())
def test_reads_like_the_eager_build_every_way(form: dict[str, Any]) -> None:
    # Each way in first on a fresh deferred assessment: each must build it on its own.
    ways = [
        lambda a: a.model_dump_json(),
        lambda a: a.model_dump(mode="json"),
        lambda a: a.model_dump(exclude_unset=True),
        repr,
        str,
        lambda a: list(a),
        lambda a: a.findings,
        lambda a: a.model_fields_set,
        lambda a: pickle.loads(pickle.dumps(a)).model_dump_json(),
        lambda a: copy.copy(a).model_dump_json(),
        lambda a: copy.deepcopy(a).model_dump_json(),
        lambda a: a.model_copy(update={"client_id": "z"}).model_dump_json(),
        lambda a: a.model_copy(update={"client_id": "z"}, deep=True).model_dump_json(),
        lambda a: a.explain(),
        lambda a: a.to_cds_cards(),
        lambda a: a.to_fhir(subject="Patient/1", when="2026-01-05T10:00:00Z"),
        lambda a: hash(a),
        lambda a: vars(a),
    ]
    for way in ways:
        deferred, eager = _pair(form)
        assert _outcome(way, deferred) == _outcome(way, eager)
    deferred, eager = _pair(form, "c-1")
    assert deferred == eager
    assert eager == deferred
    assert not (deferred != eager)  # noqa: SIM202 (the != operator itself is checked)
    assert repr(deferred) == repr(eager)
    assert deferred.model_fields_set == eager.model_fields_set
    assert deferred._repr_html_() == eager._repr_html_()


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(form=forms())
def test_pickles_and_copies_are_plain_assessments(form: dict[str, Any]) -> None:
    deferred, eager = _pair(form, "c-2")
    for made in (
        pickle.loads(pickle.dumps(deferred)),
        copy.copy(deferred),
        copy.deepcopy(deferred),
        deferred.model_copy(update={"client_id": None, "not_assessed": ()}),
    ):
        assert type(made) is Assessment
    unpickled = pickle.loads(pickle.dumps(deferred))
    assert unpickled == eager
    assert repr(unpickled) == repr(eager)
    # (Pickled bytes are not compared: which sub-objects two builds share depends on the
    # planner's caches, so even two eager builds of one form can pickle with other memo ids.)
    assert unpickled.model_fields_set == eager.model_fields_set
    assert type(deferred).__name__ == "Assessment"
    assert isinstance(deferred, Assessment)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(form=forms())
def test_a_copy_for_another_client_is_deferred_and_shares_the_build(form: dict[str, Any]) -> None:
    deferred, eager = _pair(form)
    other = deferred.model_copy(update={"client_id": "someone"})
    assert type(other) is _DeferredAssessment
    assert other == eager.model_copy(update={"client_id": "someone"})
    assert repr(other) == repr(eager.model_copy(update={"client_id": "someone"}))
    assert deferred.client_id is None
    assert other.findings is deferred.findings  # one build, shared


def test_nested_in_another_model_it_serialises_as_built() -> None:
    from pydantic import BaseModel

    class Holder(BaseModel):
        result: Assessment
        maybe: Assessment | None = None

    deferred, eager = _pair({"tightness": {"iliopsoas": 3}, "strength": {"gluteus_maximus": 3}})
    again, _ = _pair({"tightness": {"iliopsoas": 3}, "strength": {"gluteus_maximus": 3}})
    assert (
        Holder(result=deferred, maybe=again).model_dump_json()
        == Holder(result=eager, maybe=eager).model_dump_json()
    )


def test_threads_reading_one_assessment_see_one_build() -> None:
    form = {"tightness": {"iliopsoas": 3}, "strength": {"gluteus_maximus": 2}, "age": 70}
    for _ in range(20):
        deferred, _ = _pair(form)
        seen: list[Any] = []
        barrier = threading.Barrier(4)

        def read(
            result: Assessment = deferred,
            seen: list[Any] = seen,
            barrier: threading.Barrier = barrier,
        ) -> None:
            barrier.wait()
            seen.append(result.findings)

        threads = [threading.Thread(target=read) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len({id(findings) for findings in seen}) == 1


def test_the_screener_does_not_stay_alive_through_its_results() -> None:
    import gc
    import weakref

    screener = hipscreen.Screener(cache_size=0)
    result = screener.assess({"tightness": {"iliopsoas": 3}})
    ref = weakref.ref(screener)
    gc.disable()
    try:
        del screener
        assert ref() is None  # freed by reference counting alone: no cycle through the result
    finally:
        gc.enable()
    assert result == hipscreen.assess({"tightness": {"iliopsoas": 3}})  # still readable


def test_the_batch_row_path_builds_no_assessment_and_no_evidence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hipscreen import _findings, _screen
    from hipscreen._intake.form import coerce_form

    screener = hipscreen.Screener(cache_size=0)
    forms = [
        {"tightness": {"iliopsoas": 3}, "strength": {"gluteus_maximus": 2}},
        {"symptoms": ["night_pain_unrelieved_by_position", "fever"], "age": 70},
        {},
    ]
    intakes = [coerce_form(form) for form in forms]
    expected = [screener.assess(form) for form in forms]
    for assessment in expected:
        assessment.model_dump()  # built now, before the build is refused

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the row path built what it does not write")

    monkeypatch.setattr(_findings.Screening, "build", refused)
    monkeypatch.setattr(_findings.Assembler, "evidence", refused)
    monkeypatch.setattr(_screen, "deferred_assessment", refused)
    briefs = [screener.brief(intake) for intake in intakes]
    assert screener.briefs(intakes) == briefs
    for brief, assessment in zip(briefs, expected, strict=True):
        assert not isinstance(brief, Exception)
        assert [f.id for f in brief.findings] == assessment.finding_ids()
        assert brief.exercise_ids == tuple(r.exercise.id for r in assessment.recommendations)
        assert brief.not_assessed == assessment.not_assessed
