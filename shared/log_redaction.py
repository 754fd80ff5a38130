"""Database errors in logs, without the values they carry.

A database error's text quotes values: SQLAlchemy's ``[parameters: …]``, PostgreSQL's DETAIL (``Key
(partner_id, customer_ref)=(…)``) and, for some SQLSTATE classes, its primary message. A partner's
customer reference or a member's contact must not reach a log (docs/security.md), so a database error
is logged by description (``describe_database_error``): its class, SQLSTATE, the names its diagnostics
give, the database's message where its class cannot quote a value, and the statement's first line.
``log_failure`` logs a failure that way; ``WithoutDatabaseValues`` is the log handler's filter for
records logged elsewhere (a library's, uvicorn's).
"""

from __future__ import annotations

import collections.abc
import logging
import traceback

from sqlalchemy.exc import StatementError


_DRIVERS = ("psycopg", "psycopg2", "sqlite3")

# PostgreSQL's SQLSTATE classes whose primary message names objects and states (a server, a database,
# a relation, a constraint, a lock), never a value of a row or a parameter — read from its message
# catalogue (errcodes.txt and the errmsg() texts raised with them): `duplicate key value violates
# unique constraint "…"` (the row is in DETAIL, left out anyway), `relation "…" does not exist`,
# `sorry, too many clients already`. Left out with any class not listed: 22, data exceptions, which
# quote the input (`invalid input syntax for type integer: "…"`, `invalid input value for enum …: "…"`);
# 2F, 38 and 39, a function's own errors; HV, a foreign server's; P0, PL/pgSQL's RAISE (any text).
_MESSAGE_NAMES_NO_VALUE = frozenset({
    "03", "08", "09", "0A", "0B", "0F", "0L", "0P", "0Z", "20", "21", "23", "24", "25", "26", "27", "28",
    "2B", "2D", "34", "3B", "3D", "3F", "40", "42", "44", "53", "54", "55", "57", "58", "72", "F0", "XX"})


def _chain(exc: BaseException | None, seen: set[int] | None = None) -> list[BaseException]:
    """The exception and those it was raised from or during, outermost first (as a traceback links them),
    none already in ``seen`` (the ids of those met before; each met here is added)."""
    seen = set() if seen is None else seen
    chain: list[BaseException] = []
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        chain.append(exc)
        exc = exc.__cause__ if exc.__cause__ is not None else (None if exc.__suppress_context__ else exc.__context__)
    return chain


def _links(exc: BaseException | None) -> list[BaseException]:
    """Every exception a traceback of ``exc`` shows: its chain and, for an exception group, each of its
    exceptions' (depth first, each once: a cycle ends)."""
    found: list[BaseException] = []
    seen: set[int] = set()
    pending = [exc]
    while pending:
        chain = _chain(pending.pop(), seen)
        found.extend(chain)
        for link in reversed(chain):
            if isinstance(link, BaseExceptionGroup):
                pending.extend(reversed(link.exceptions))
    return found


def _is_database_error(exc: BaseException) -> bool:
    return isinstance(exc, StatementError) or type(exc).__module__.split(".")[0] in _DRIVERS


def carries_database_error(exc: BaseException | None) -> bool:
    return any(_is_database_error(link) for link in _links(exc))


def _first_line(text: object) -> str:
    return (str(text or "").strip().splitlines() or [""])[0][:300]


def _driver_message(driver: BaseException, sqlstate: str | None) -> str:
    """What the driver says failed, where it cannot quote a value: PostgreSQL's primary message for a
    SQLSTATE class that names objects only; without a SQLSTATE (the server was never reached, or
    refused the connection) the first line of a connection's error; SQLite's message (it names columns,
    never values)."""
    if type(driver).__module__ == "sqlite3":
        return _first_line(driver)
    if sqlstate:
        if sqlstate[:2] not in _MESSAGE_NAMES_NO_VALUE:
            return ""
        return _first_line(getattr(getattr(driver, "diag", None), "message_primary", None) or driver)
    # psycopg's own errors, raised before or without the server: a connection's name a host, a port, a
    # database; a DataError quotes the value it could not load (`can't parse date '…'`)
    if type(driver).__name__ in ("OperationalError", "InterfaceError"):
        return _first_line(driver)
    return ""


def describe_database_error(exc: BaseException) -> str:
    """A database error as an operator diagnoses it, without the values it carries: SQLAlchemy's
    class, the driver's error, PostgreSQL's SQLSTATE and the names its diagnostics give (constraint,
    table, column), the driver's message where it cannot quote a value (``_driver_message``: PostgreSQL's
    primary message, ``relation "…" does not exist``, not for a data exception; a failed connection's;
    SQLite's), and the statement's first line (its placeholders, not its parameters). Left out: the
    parameters, PostgreSQL's DETAIL, which quotes the row (``Key (partner_id, customer_ref)=(ptn_…,
    C-1001) already exists``), and the message of an error whose class quotes values
    (``invalid input syntax for type integer: "…"``)."""
    links = _links(exc)
    wrapper = next((link for link in links if isinstance(link, StatementError)), None)
    driver = getattr(wrapper, "orig", None)
    if driver is None or not _is_database_error(driver):
        driver = next((link for link in links if type(link).__module__.split(".")[0] in _DRIVERS), None)
    details: list[str] = []
    message = ""
    if driver is not None:
        if wrapper is not None:
            details.append(type(driver).__name__)
        sqlstate = None
        if type(driver).__module__.startswith("psycopg"):
            sqlstate = getattr(driver, "sqlstate", None) or getattr(driver, "pgcode", None)
            if sqlstate:
                details.append(f"SQLSTATE {sqlstate}")
            diag = getattr(driver, "diag", None)
            for name in ("constraint_name", "table_name", "column_name", "datatype_name"):
                if value := getattr(diag, name, None):
                    details.append(f"{name.removesuffix('_name')} {value}")
        elif type(driver).__module__ == "sqlite3" and (code := getattr(driver, "sqlite_errorname", None)):
            details.append(code)
        message = _driver_message(driver, sqlstate)
    described = type(wrapper or driver or exc).__name__ + (f" ({', '.join(details)})" if details else "")
    if message:
        described += ": " + message
    statement = (getattr(wrapper, "statement", None) or "").strip()
    if statement:
        described += " in: " + statement.splitlines()[0][:300]
    return described


def _traceback_without_values(exc: BaseException, seen: set[int] | None = None) -> str:
    """The traceback as Python prints it (innermost cause first; an exception group's exceptions after
    it, numbered), each database error's own line replaced by its description."""
    seen = set() if seen is None else seen
    parts: list[str] = []
    inner = None
    for link in reversed(_chain(exc, seen)):
        if inner is not None:
            parts.append("\nThe above exception was the direct cause of the following exception:\n\n"
                         if link.__cause__ is inner else
                         "\nDuring handling of the above exception, another exception occurred:\n\n")
        if link.__traceback__ is not None:
            parts.append("Traceback (most recent call last):\n")
            parts.extend(traceback.format_tb(link.__traceback__))
        if _is_database_error(link):
            parts.append(f"{type(link).__module__}.{type(link).__qualname__}: {describe_database_error(link)}\n")
        else:
            parts.extend(traceback.format_exception_only(type(link), link))
        if isinstance(link, BaseExceptionGroup):
            for number, member in enumerate(link.exceptions, 1):
                parts.append(f"+---------------- {number} ----------------\n")
                shown = _traceback_without_values(member, seen) if id(member) not in seen else \
                    f"({type(member).__name__}: shown above)"
                parts.extend(f"| {line}\n" for line in shown.splitlines())
            parts.append("+------------------------------------\n")
        inner = link
    return "".join(parts).rstrip("\n")


def log_failure(logger: logging.Logger, message: str, *args, exc: BaseException) -> None:
    """``logger.exception``, but a database error's parameters and the row its DETAIL quotes (a
    partner's customer_ref, a member's contact in a failed statement) stay out of the record: its
    description and a traceback without them instead (see ``describe_database_error``)."""
    if not carries_database_error(exc):
        logger.error(message, *args, exc_info=exc, stacklevel=2)
        return
    logger.error(message + ": %s\n%s", *args, describe_database_error(exc), _traceback_without_values(exc),
                 extra={"error": describe_database_error(exc)}, stacklevel=2)


def _text(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__}>"


class WithoutDatabaseValues(logging.Filter):
    """The log handler's filter for records logged elsewhere (a library's, uvicorn's): a database
    error in the record's traceback or arguments is replaced by its description, as ``log_failure``
    does. It never raises (a filter's exception would leave through the caller's logging call): a
    record whose arguments do not fit its message keeps the message and the arguments, described;
    one it fails on otherwise keeps its message alone."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            self._leave_out_values(record)
        except Exception as failure:  # the values it could not look through are left out
            record.msg = f"{_text(record.msg)} (arguments and traceback left out: {type(failure).__name__} " \
                         f"while looking for database values in them)"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True

    @staticmethod
    def _leave_out_values(record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if isinstance(record.exc_info, tuple) and len(record.exc_info) > 1 else None
        args = record.args
        values = list(args.values()) if isinstance(args, collections.abc.Mapping) else \
            list(args) if isinstance(args, tuple) else []
        in_args = any(isinstance(arg, BaseException) and carries_database_error(arg) for arg in values)
        in_exc = isinstance(exc, BaseException) and carries_database_error(exc)
        if not in_args and not in_exc:
            return

        def described(arg):
            return describe_database_error(arg) if isinstance(arg, BaseException) and carries_database_error(arg) \
                else arg

        if in_args:
            record.args = {key: described(arg) for key, arg in args.items()} \
                if isinstance(args, collections.abc.Mapping) else tuple(described(arg) for arg in args)
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit: plain logging prints "--- Logging error ---"
            shown = record.args.values() if isinstance(record.args, collections.abc.Mapping) else record.args
            message = f"{_text(record.msg)} (arguments that do not fit it: " \
                      f"{', '.join(_text(arg) for arg in shown or ())})"
        first = exc if in_exc else next(arg for arg in values
                                          if isinstance(arg, BaseException) and carries_database_error(arg))
        if not hasattr(record, "error"):  # the JSON field ``error``, as ``log_failure`` gives it
            record.error = describe_database_error(first)
        if in_exc:
            message = f"{message}: {describe_database_error(exc)}\n{_traceback_without_values(exc)}"
            record.exc_info = None
            record.exc_text = None
        record.msg = message
        record.args = None
