"""A database error is logged as an operator diagnoses it (PostgreSQL's own words for what failed: the
server that refused, the database or relation that is not there, the constraint violated) but
without the values a row carries (a partner's customer_ref, in DETAIL, in the parameters, or in the
message itself of a data exception). The log handler's filter never takes a logging call down, and a
database error inside an exception group is described like any other."""

from __future__ import annotations

import json
import logging
import re
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from shared.db.database import make_engine, normalise_url
from shared.log_redaction import WithoutDatabaseValues, carries_database_error, describe_database_error, log_failure
from shared.observability import configure_logging
from tests.conftest import PG_URL

REF = "CREF-4417-SECRET"


def quoted(text: str) -> bool:
    """Whether the customer_ref, or its number (not digits of a timestamp), is in the text."""
    return REF in text or re.search(r"(?<![\d.])4417(?![\d.])", text) is not None


def failing(statements: list[tuple[str, dict]], url: str | None = None) -> DBAPIError:
    """The error a real database raises for the last of these statements (run in one transaction).
    Without the project's engine (``hide_parameters``) unless ``url`` is given: SQLAlchemy's text then
    carries the parameters, as any engine's might."""
    engine = make_engine(url) if url else create_engine("sqlite://")
    try:
        with pytest.raises(DBAPIError) as caught, engine.begin() as conn:
            for sql, params in statements:
                conn.execute(text(sql), params)
        return caught.value
    finally:
        engine.dispose()


def a_unique_violation() -> DBAPIError:
    return failing([("CREATE TABLE links (customer_ref TEXT UNIQUE)", {}),
                    ("INSERT INTO links (customer_ref) VALUES (:ref)", {"ref": REF}),
                    ("INSERT INTO links (customer_ref) VALUES (:ref)", {"ref": REF})])


class _Lines:
    def __init__(self):
        self.lines: list[str] = []

    def write(self, text: str) -> None:
        self.lines.extend(line for line in text.splitlines() if line)

    def flush(self) -> None:
        pass


@pytest.fixture
def json_logging():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("json")
    stream = _Lines()
    root.handlers[0].setStream(stream)
    try:
        yield stream.lines
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


# -- PostgreSQL's own errors -------------------------------------------------------------------

pg = pytest.mark.postgres


@pg
def test_a_refused_connection_names_the_server_that_refused():
    url = make_url(normalise_url(PG_URL)).set(port=1).render_as_string(hide_password=False)
    error = failing([("SELECT 1", {})], url)
    described = describe_database_error(error)
    assert "OperationalError" in described, described
    assert "Connection refused" in described and "port 1" in described, described


@pg
def test_an_unknown_database_is_named():
    name = f"fix_absent_{uuid.uuid4().hex[:8]}"
    url = make_url(normalise_url(PG_URL)).set(database=name).render_as_string(hide_password=False)
    described = describe_database_error(failing([("SELECT 1", {})], url))
    assert f'database "{name}" does not exist' in described, described


@pg
def test_an_unknown_relation_is_named():
    described = describe_database_error(failing([("SELECT * FROM no_such_relation", {})], PG_URL))
    assert "SQLSTATE 42P01" in described and 'relation "no_such_relation" does not exist' in described, described
    assert "LINE 1" not in described, described


TABLE = "CREATE TEMPORARY TABLE links (customer_ref TEXT UNIQUE, points INTEGER CHECK (points > 0))"


@pg
def test_a_unique_violation_names_its_constraint_but_not_the_customer_ref():
    error = failing([(TABLE, {}), ("INSERT INTO links VALUES (:ref, 1)", {"ref": REF}),
                     ("INSERT INTO links VALUES (:ref, 1)", {"ref": REF})], PG_URL)
    assert REF in str(error.orig), "PostgreSQL's DETAIL quotes the row"
    described = describe_database_error(error)
    assert 'duplicate key value violates unique constraint "links_customer_ref_key"' in described, described
    assert "SQLSTATE 23505" in described and "INSERT INTO links" in described, described
    assert not quoted(described), described


@pg
def test_a_check_violation_names_its_constraint_but_not_the_row():
    error = failing([(TABLE, {}), ("INSERT INTO links VALUES (:ref, :points)", {"ref": REF, "points": -7})], PG_URL)
    assert REF in str(error.orig), "PostgreSQL's DETAIL quotes the failing row"
    described = describe_database_error(error)
    assert 'violates check constraint "links_points_check"' in described, described
    assert not quoted(described) and "-7" not in described, described


@pg
def test_invalid_input_syntax_leaves_out_the_message_that_quotes_the_value():
    error = failing([("SELECT CAST(:v AS INTEGER)", {"v": REF})], PG_URL)
    assert REF in str(error.orig), "PostgreSQL's message itself quotes the value"
    described = describe_database_error(error)
    assert "SQLSTATE 22P02" in described and "InvalidTextRepresentation" in described, described
    assert not quoted(described), described


# -- the handler's filter never raises ---------------------------------------------------------

def test_a_record_whose_arguments_do_not_match_its_message_does_not_raise(json_logging):
    error = a_unique_violation()
    assert REF in str(error), "an engine without hide_parameters shows them"
    log = logging.getLogger("somewhere")
    log.error("job %s failed in %s", "clash", exc_info=error)  # one argument short
    log.warning("could not record %s: %s", error)  # a database error in arguments one short
    log.warning("could not record %d", error)  # an argument of the wrong type
    assert len(json_logging) == 3, json_logging
    lines = [json.loads(line) for line in json_logging]
    assert "IntegrityError" in lines[0]["message"] and "links" in lines[0]["message"], lines[0]
    assert not quoted("\n".join(json_logging)), json_logging


def test_the_filter_never_raises_on_any_record():
    error = a_unique_violation()
    for msg, args in (("%s %s", ("one",)), ("%(a)s", ("x",)), ("%d", (error,)), (object(), (error, 1))):
        for exc_info in (None, (type(error), error, error.__traceback__)):
            record = logging.LogRecord("x", logging.ERROR, __file__, 1, msg, args, exc_info)
            assert WithoutDatabaseValues().filter(record) is True
            assert REF not in str(record.msg) + repr(record.args) + str(record.exc_info), record.__dict__


# -- exception groups --------------------------------------------------------------------------

def test_a_database_error_inside_an_exception_group_is_logged_without_its_values(json_logging):
    error = a_unique_violation()
    try:
        raise ExceptionGroup("the batch failed", [ValueError("other"), error])
    except ExceptionGroup as group:
        caught = group
    assert carries_database_error(caught)
    assert "IntegrityError" in describe_database_error(caught), describe_database_error(caught)
    log = logging.getLogger("pointsnet.jobs")
    log_failure(log, "job %s failed", "clash", exc=caught)
    log.error("unhandled", exc_info=caught)  # through the filter
    log.warning("could not record: %s", caught)
    assert len(json_logging) == 3, json_logging
    text = "\n".join(json_logging)
    assert not quoted(text), text
    first = json.loads(json_logging[0])["message"]
    assert "job clash failed" in first and "the batch failed" in first and "ValueError: other" in first, first
    assert "IntegrityError" in first and "in failing" in first, first  # the sub-exception's traceback


def test_a_cycle_through_an_exception_group_ends():
    error = a_unique_violation()
    inner = BaseExceptionGroup("inner", [KeyboardInterrupt()])
    group = BaseExceptionGroup("outer", [inner, error])
    inner.exceptions[0].__context__ = group  # back to the outer group
    assert carries_database_error(group)
    assert "IntegrityError" in describe_database_error(group)
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), (type(group), group, None))
    assert WithoutDatabaseValues().filter(record) is True
    assert REF not in record.getMessage() and "IntegrityError" in record.getMessage()


def test_a_librarys_database_error_has_the_json_error_field_too(json_logging):
    """operations.md: a database error escaping anywhere (uvicorn's "Exception in ASGI application", a
    scheduler's line) has its description in the JSON field ``error``, as ``log_failure``'s lines do;
    the filter wrote it into the message only."""
    error = a_unique_violation()
    # a library's logger of its own (uvicorn's own is configured by whatever server ran before in the process)
    logging.getLogger("a.library.asgi").error("Exception in ASGI application", exc_info=error)
    logging.getLogger("apscheduler.executors.default").error("Job %s raised: %s", "run_job", error)
    records = [json.loads(line) for line in json_logging]
    assert len(records) == 2, json_logging
    for record in records:
        assert record["error"].startswith("IntegrityError"), record
        assert not quoted(json.dumps(record)), record
