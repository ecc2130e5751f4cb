"""Shared fixtures: paths, the rules, and real servers (PostgreSQL) with skip-or-fail.

A test that needs a server it cannot reach is skipped with the reason; where
MAILBOT_REQUIRE_SERVERS=1 (set by .ci/run) that skip becomes a failure, so CI cannot pass
by not testing.
"""
from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SHARED = ROOT.parent / "shared"
POSTGRES_ADMIN_URL = os.environ.get("MAILBOT_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
CASES = sorted((DATA / "cases").glob("*.eml"))     # tests/data/cases/README.md


def case_expectation(eml: Path) -> dict:
    """A case's NAME.yaml, its `received` an aware datetime (the scenario's default where absent)."""
    expected = yaml.safe_load(eml.with_suffix(".yaml").read_text(encoding="utf-8"))
    received = expected.get("received", "2026-11-20T10:00:00+08:00")
    expected["received"] = received if isinstance(received, dt.datetime) else dt.datetime.fromisoformat(received)
    return expected


def case_items(items) -> list[tuple]:
    """Items as (file, task, period, status, error codes, warning codes), skipped ones left out, in
    one order: a case's expected items and the decided ones (dicts with the JSON output's keys) compare equal."""
    return sorted(((i["filename"], i["task"], str(i["period"]) if i.get("period") else None, i["status"],
                    sorted(i.get("error_codes", [])), sorted(i.get("warning_codes", [])))
                   for i in items if i["status"] != "skipped"), key=str)


def need(reason: str):
    """Skip with `reason`, or fail where CI requires every server-backed test to run."""
    if os.environ.get("MAILBOT_REQUIRE_SERVERS") == "1":
        pytest.fail(f"required server missing (MAILBOT_REQUIRE_SERVERS=1): {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def rules_dir() -> Path:
    return ROOT / "rules"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        need(f"../shared not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin URL of a reachable PostgreSQL, or skip/fail."""
    try:
        import sqlalchemy as sa
        eng = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            c.execute(sa.text("select 1"))
        eng.dispose()
    except Exception as e:  # noqa: BLE001 - any failure means: no usable server
        need(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {type(e).__name__}: {e}")
    return POSTGRES_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, empty database for one test, dropped afterwards."""
    import sqlalchemy as sa
    name = f"mailbot_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}" ENCODING \'UTF8\' TEMPLATE template0'))
    url = postgres_server.rsplit("/", 1)[0] + "/" + name
    yield url
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def make_postgres_db():
    """A factory of fresh, empty PostgreSQL databases (URLs), all dropped after the test; skip/fail without a server."""
    import uuid

    import sqlalchemy as sa
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(sa.text("select 1"))
    except Exception as e:  # noqa: BLE001 - any failure means: no usable server
        admin.dispose()
        need(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {type(e).__name__}: {e}")
    names: list[str] = []

    def make() -> str:
        name = f"mailbot_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}" ENCODING \'UTF8\' TEMPLATE template0'))
        names.append(name)
        return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name

    yield make
    with admin.connect() as c:
        for name in names:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path):
    """Run a storage test on both databases the bureau may use."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mailbot.sqlite3'}"
    return request.getfixturevalue("postgres_url")


def _open_store(url: str, storage):
    from mailbot.store import Store
    st = Store(url, storage)
    st.upgrade()
    return st


@pytest.fixture
def store(tmp_path):
    """A migrated store on SQLite, for tests about something other than the database."""
    st = _open_store(f"sqlite:///{tmp_path / 'mailbot.sqlite3'}", tmp_path / "storage")
    yield st
    st.close()


@pytest.fixture
def db_store(database_url, tmp_path):
    """A migrated store on SQLite and on PostgreSQL."""
    st = _open_store(database_url, tmp_path / "storage")
    yield st
    st.close()


# ---------------------------------------------------------------- the fast subset
# `pytest -m "not slow"` runs what needs no server, no database and no subprocess: the pure
# stages, in well under a minute. A test is slow when it uses a server or database fixture or
# lives in a module that drives whole programs; an explicit @pytest.mark.slow counts too.
_SLOW_FIXTURES = {"make_postgres_db", "postgres_server", "postgres_url", "database_url", "db_store", "store", "dovecot",
                  "cyrus", "imap_server", "smtp_relay", "make_smtp_relay", "test_cert", "sqlite_config", "sample", "shared_dir"}
_SLOW_MODULES = {"test_faults", "test_daemon", "test_month", "test_demo", "test_mailservers", "test_mailbox",
                 "test_imap_servers", "test_sender", "test_cli", "test_office", "test_store", "test_boundaries", "test_corpus_parse",
                 "test_backup", "test_bundle", "test_secrets"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        if module in _SLOW_MODULES or _SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
