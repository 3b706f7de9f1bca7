"""The audit trail and feedback store (hipscreen._audit): schema, migrations, SQLite WAL, and
PostgreSQL when a server is configured."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy", reason="SQLAlchemy is not installed (the service extra)")

from hipscreen._audit import SCHEMA_VERSION, AssessmentRecord, AuditLog, digest

RECORD = AssessmentRecord(
    service_id="hipscreen",
    hook="patient-view",
    hook_instance="inst-1",
    input_digest=digest({"age": 40}),
    ruleset_version="1.1.0+abc",
    findings=["tight-hip-flexors"],
    referral={"urgency": "routine", "see": "a physiotherapist"},
    cards=[{"uuid": str(uuid.uuid4()), "code": "tight-hip-flexors", "indicator": "info"}],
    client="https://ehr.example.org",
)


def _entry(card: str, **extra: object) -> dict[str, object]:
    return {
        "card": card,
        "outcome": "overridden",
        "overrideReason": {"userComment": "later"},
        "outcomeTimestamp": "2026-12-07T01:02:03Z",
        **extra,
    }


def _exercise(log: AuditLog) -> None:
    row_id = log.record_assessment(RECORD)
    assert row_id >= 1
    [row] = log.assessments()
    assert row["hook_instance"] == "inst-1"
    assert row["findings"] == ["tight-hip-flexors"]
    assert row["referral"] == {"urgency": "routine", "see": "a physiotherapist"}
    assert row["cards"] == list(RECORD.cards)
    assert row["client"] == "https://ehr.example.org"
    card = str(uuid.uuid4())
    assert log.record_feedback("hipscreen", [_entry(card), _entry(card)]) == (1, 1)
    assert log.record_feedback("hipscreen", [_entry(card)]) == (0, 1)
    accepted = _entry(card, outcome="accepted", acceptedSuggestions=[{"id": "s-1"}])
    assert log.record_feedback("hipscreen", [accepted]) == (1, 0)
    rows = log.feedback()
    assert [r["outcome"] for r in rows] == ["accepted", "overridden"]
    assert rows[0]["accepted_suggestions"] == ["s-1"]
    assert log.schema_version() == SCHEMA_VERSION


def test_an_in_memory_log_records_assessments_and_feedback() -> None:
    _exercise(AuditLog())


def test_a_sqlite_file_is_in_wal_mode_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    log = AuditLog(str(path))
    _exercise(log)
    log.close()
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT version FROM hipscreen_schema").fetchone()[0] == SCHEMA_VERSION
    again = AuditLog(f"sqlite:///{path}")
    assert len(again.assessments()) == 1
    assert len(again.feedback()) == 2
    again.close()


def test_a_database_from_a_newer_hipscreen_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    AuditLog(str(path)).close()
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        raw.execute("UPDATE hipscreen_schema SET version = 99")
    with pytest.raises(RuntimeError, match="schema version 99"):
        AuditLog(str(path))


def test_migrations_start_from_an_empty_database(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        raw.execute("CREATE TABLE hipscreen_schema (version INTEGER NOT NULL)")
        raw.execute("INSERT INTO hipscreen_schema VALUES (0)")
    log = AuditLog(str(path))
    assert log.schema_version() == SCHEMA_VERSION
    _exercise(log)


def test_the_url_shown_hides_the_password() -> None:
    pytest.importorskip("sqlite3")
    log = AuditLog("sqlite://")
    assert log.url == "sqlite://"
    log.close()


POSTGRES = os.environ.get("HIPSCREEN_TEST_POSTGRES_URL")


@pytest.mark.skipif(
    POSTGRES is None,
    reason="no PostgreSQL server: set HIPSCREEN_TEST_POSTGRES_URL="
    "postgresql+psycopg://user:password@host/db to run this test",
)
def test_postgresql() -> None:
    assert POSTGRES is not None
    log = AuditLog(POSTGRES)
    from sqlalchemy import text

    with log._engine.begin() as conn:
        conn.execute(text("DELETE FROM feedback"))
        conn.execute(text("DELETE FROM assessments"))
    _exercise(log)
    assert "password" not in log.url
    log.close()


def test_the_service_audits_plain_assessments_too() -> None:
    pytest.importorskip("fastapi", reason="the service extra is not installed")
    from fastapi.testclient import TestClient

    from hipscreen._service import create_app

    app = create_app()
    form = {"tightness": {"iliopsoas": 3}}
    with TestClient(app) as client:
        assert client.post("/assess", json=form).status_code == 200
        assert client.post("/assess/html", json=form).status_code == 200
        assert client.post("/assess", json={"age": -1}).status_code == 422
    rows = app.state.audit.assessments()
    assert [(r["hook"], r["cards"], r["input_digest"]) for r in rows] == [
        ("assess", [], digest(form)),
        ("assess", [], digest(form)),
    ]
    assert rows[0]["hook_instance"] != rows[1]["hook_instance"]
