"""The audit trail of the web service: what each call decided, and the feedback on its cards.

A real database through SQLAlchemy Core: SQLite in WAL mode by default (a file, or ``sqlite://``
in memory for tests), any SQLAlchemy URL (``postgresql+psycopg://...``) when configured.

Schema (version `SCHEMA_VERSION`), created and migrated when an `AuditLog` opens:

``hipscreen_schema``
    ``version`` — the schema version the tables are at (one row).
``assessments`` — one row per screening the service answered
    ``id``, ``recorded_at`` (UTC, RFC 3339), ``service_id``, ``hook``, ``hook_instance``,
    ``client`` (the JWT issuer, or null without client authentication), ``input_digest``
    (SHA-256 of the form as canonical JSON: the form itself is not stored), ``ruleset_version``,
    ``findings`` (JSON list of finding ids), ``referral`` (JSON object or null), ``cards`` (JSON
    list of ``{uuid, code, indicator, suggestions}``: the cards returned).
``feedback`` — one row per distinct feedback entry (repeats are recognised and not stored twice)
    ``id``, ``received_at``, ``service_id``, ``card`` (the card uuid), ``outcome``,
    ``outcome_timestamp``, ``accepted_suggestions`` (JSON list of suggestion uuids),
    ``override_system``, ``override_code``, ``override_display``, ``user_comment``, ``client``,
    ``entry_digest`` (SHA-256 of the entry as canonical JSON, unique).

No token, ``fhirAuthorization`` or ``Authorization`` header is ever written. Migrations are plain
functions, one per version step, in `MIGRATIONS`; each runs in a transaction with the version bump.
Install with the ``service`` extra (SQLAlchemy).
"""

from __future__ import annotations

import hashlib
import json
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "AssessmentRecord", "AuditLog", "digest"]


def digest(value: Any) -> str:
    """SHA-256 (hex) of a JSON value written canonically (sorted keys, no spaces, UTF-8)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class AssessmentRecord:
    """What one service call decided (never the form itself, never a token)."""

    service_id: str
    hook: str
    hook_instance: str
    input_digest: str
    ruleset_version: str
    findings: Sequence[str]
    referral: Mapping[str, Any] | None
    cards: Sequence[Mapping[str, Any]]
    client: str | None = None


def _tables() -> tuple[Any, Any]:
    """The tables at the current schema version, as SQLAlchemy Core objects (any dialect)."""
    from sqlalchemy import Column, Index, Integer, MetaData, String, Table, Text

    metadata = MetaData()
    assessments = Table(
        "assessments",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("recorded_at", String(40), nullable=False),
        Column("service_id", String(200), nullable=False),
        Column("hook", String(200), nullable=False),
        Column("hook_instance", String(200), nullable=False),
        Column("client", String(2000)),
        Column("input_digest", String(64), nullable=False),
        Column("ruleset_version", String(200), nullable=False),
        Column("findings", Text, nullable=False),
        Column("referral", Text),
        Column("cards", Text, nullable=False),
        Index("assessments_hook_instance", "hook_instance"),
    )
    feedback = Table(
        "feedback",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("received_at", String(40), nullable=False),
        Column("service_id", String(200), nullable=False),
        Column("card", String(200), nullable=False),
        Column("outcome", String(20), nullable=False),
        Column("outcome_timestamp", String(40), nullable=False),
        Column("accepted_suggestions", Text, nullable=False),
        Column("override_system", String(2000)),
        Column("override_code", String(200)),
        Column("override_display", String(2000)),
        Column("user_comment", Text),
        Column("client", String(2000)),
        Column("entry_digest", String(64), nullable=False, unique=True),
        Index("feedback_card", "card"),
    )
    return assessments, feedback


def _migrate_to_1(conn: Connection) -> None:
    """Version 1: the assessments and feedback tables."""
    assessments, feedback = _tables()
    assessments.create(conn)
    feedback.create(conn)


MIGRATIONS: tuple[Callable[[Connection], None], ...] = (_migrate_to_1,)
"""``MIGRATIONS[n]`` takes the schema from version n to n + 1. Append, never edit."""

SCHEMA_VERSION = len(MIGRATIONS)


def _require_sqlalchemy() -> None:
    try:
        import sqlalchemy  # noqa: F401
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            'SQLAlchemy is not installed, run `pip install "hipscreen[service]"` for the audit '
            "trail",
            name="sqlalchemy",
        ) from None


def _url(target: str) -> str:
    """A SQLAlchemy URL: a URL as given, a plain path as a SQLite file."""
    if "://" in target:
        return target
    return f"sqlite:///{target}"


class AuditLog:
    """The audit trail and feedback store (see the module docstring for the schema).

    Args:
        target: a SQLAlchemy URL, or a file path for SQLite; ``"sqlite://"`` keeps it in memory.

    Raises:
        ModuleNotFoundError: SQLAlchemy is not installed (the message names the install command).
        RuntimeError: the database holds a newer schema than this hipscreen knows.
    """

    def __init__(self, target: str = "sqlite://") -> None:
        _require_sqlalchemy()
        from sqlalchemy import create_engine, event
        from sqlalchemy.pool import StaticPool

        url = _url(target)
        self._lock = threading.Lock()
        engine: Engine
        if url.startswith("sqlite"):
            memory = url in ("sqlite://", "sqlite:///:memory:")
            engine = create_engine(
                url,
                connect_args={"check_same_thread": False, "timeout": 30},
                poolclass=StaticPool if memory else None,
            )

            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                if not memory:
                    cursor.execute("PRAGMA journal_mode=WAL")
                    cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.execute("PRAGMA busy_timeout=30000")
                cursor.close()

        else:
            engine = create_engine(url, pool_pre_ping=True)
        self._engine = engine
        # Connections are closed when the log is closed or collected (Python 3.13 warns about a
        # SQLite connection that is only dropped), and when opening it fails.
        self._close = weakref.finalize(self, engine.dispose)
        self._assessments, self._feedback = _tables()
        self.url = engine.url.render_as_string(hide_password=True)
        try:
            self._migrate()
        except BaseException:
            self._close()
            raise

    def _migrate(self) -> None:
        from sqlalchemy import inspect, text

        with self._lock, self._engine.begin() as conn:
            if not inspect(conn).has_table("hipscreen_schema"):
                conn.execute(text("CREATE TABLE hipscreen_schema (version INTEGER NOT NULL)"))
                conn.execute(text("INSERT INTO hipscreen_schema (version) VALUES (0)"))
            version = int(conn.execute(text("SELECT version FROM hipscreen_schema")).scalar_one())
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"the audit database {self.url} is at schema version {version}; this "
                    f"hipscreen knows versions up to {SCHEMA_VERSION}: upgrade hipscreen"
                )
            for step in MIGRATIONS[version:]:
                step(conn)
            conn.execute(text("UPDATE hipscreen_schema SET version = :v"), {"v": SCHEMA_VERSION})

    def schema_version(self) -> int:
        """The schema version of the database."""
        from sqlalchemy import text

        with self._engine.connect() as conn:
            return int(conn.execute(text("SELECT version FROM hipscreen_schema")).scalar_one())

    def record_assessment(self, record: AssessmentRecord) -> int:
        """Store one service call's decision; returns the row id."""

        row = {
            "recorded_at": _now(),
            "service_id": record.service_id,
            "hook": record.hook,
            "hook_instance": record.hook_instance,
            "client": record.client,
            "input_digest": record.input_digest,
            "ruleset_version": record.ruleset_version,
            "findings": json.dumps(list(record.findings)),
            "referral": None if record.referral is None else json.dumps(record.referral),
            "cards": json.dumps(list(record.cards), ensure_ascii=False),
        }
        with self._lock, self._engine.begin() as conn:
            result = conn.execute(self._assessments.insert().values(**row))
            key = result.inserted_primary_key
            return int(key[0]) if key is not None else 0

    def record_feedback(
        self, service_id: str, entries: Sequence[Mapping[str, Any]], client: str | None = None
    ) -> tuple[int, int]:
        """Store feedback entries (already validated); returns (stored, repeats)."""
        from sqlalchemy import text

        stored = repeats = 0
        with self._lock, self._engine.begin() as conn:
            for entry in entries:
                key = digest({"service": service_id, "entry": entry})
                seen = conn.execute(
                    text("SELECT 1 FROM feedback WHERE entry_digest = :d"), {"d": key}
                ).first()
                if seen is not None:
                    repeats += 1
                    continue
                reason = entry.get("overrideReason") or {}
                coding = reason.get("reason") or {}
                conn.execute(
                    self._feedback.insert().values(
                        received_at=_now(),
                        service_id=service_id,
                        card=entry["card"],
                        outcome=entry["outcome"],
                        outcome_timestamp=entry["outcomeTimestamp"],
                        accepted_suggestions=json.dumps(
                            [s["id"] for s in entry.get("acceptedSuggestions", [])]
                        ),
                        override_system=coding.get("system"),
                        override_code=coding.get("code"),
                        override_display=coding.get("display"),
                        user_comment=reason.get("userComment"),
                        client=client,
                        entry_digest=key,
                    )
                )
                stored += 1
        return stored, repeats

    def _rows(self, table: str, limit: int) -> list[dict[str, Any]]:
        from sqlalchemy import text

        with self._engine.connect() as conn:
            result = conn.execute(
                text(f"SELECT * FROM {table} ORDER BY id DESC LIMIT :n"), {"n": limit}
            )
            return [dict(row._mapping) for row in result]

    def assessments(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest assessment records, newest first (JSON columns decoded)."""
        rows = self._rows("assessments", limit)
        for row in rows:
            for column in ("findings", "referral", "cards"):
                if row[column] is not None:
                    row[column] = json.loads(row[column])
        return rows

    def feedback(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest feedback records, newest first."""
        rows = self._rows("feedback", limit)
        for row in rows:
            row["accepted_suggestions"] = json.loads(row["accepted_suggestions"])
        return rows

    def close(self) -> None:
        """Release the database connections (once; later calls do nothing)."""
        self._close()
