"""The ``pointsnet`` command: runs any service, or all of them in one process.

This package holds the command's groups and what every command shares (the consoles, ``fail``, the
network); the commands live in one module per domain, imported at the end to register them.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pydantic import ValidationError
from pydantic_settings import SettingsError
from sqlalchemy.exc import SQLAlchemyError

from shared.config import ConfigurationError, get_settings
from shared.errors import PointsnetError
from shared.money import MoneyError
try:
    from typer import TyperException as UsageMistake  # the click typer carries inside since 0.2x
except ImportError:  # an older typer, on the click package
    from click import ClickException as UsageMistake

app = typer.Typer(help="Pointsnet: a coalition loyalty points network.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
partners_app = typer.Typer(help="Partner merchants and their contracts.", no_args_is_help=True)
clearing_app = typer.Typer(help="Settlement of cycles and finance controls.", no_args_is_help=True)
rules_app = typer.Typer(help="Earn rules and campaigns (JSON or YAML documents, versioned).", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
app.add_typer(db_app, name="db")
app.add_typer(clearing_app, name="clearing")
keys_app = typer.Typer(help="A partner's signing keys.", no_args_is_help=True)
partners_app.add_typer(keys_app, name="keys")
app.add_typer(partners_app, name="partners")
alerts_app = typer.Typer(help="Operator alerts: limits reached, refusals that protect money.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
webhooks_app = typer.Typer(help="Signed webhooks to partners: endpoints, secrets, deliveries, dead letters.",
                           no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")
members_app = typer.Typer(help="Members: balance, tier, activity status, history; merge, erasure and export.",
                          no_args_is_help=True)
app.add_typer(members_app, name="members")
reports_app = typer.Typer(help="Partner performance reports and network analytics (docs/reports.md).",
                          no_args_is_help=True)
app.add_typer(reports_app, name="reports")
users_app = typer.Typer(help="Dashboard users: operators, finance, partner viewers (docs/dashboard.md).",
                        no_args_is_help=True)
app.add_typer(users_app, name="users")
repair_app = typer.Typer(help="Repairs that verify may call for (docs/operations.md).", no_args_is_help=True)
app.add_typer(repair_app, name="repair")
network_keys_app = typer.Typer(help="The network's own keys (response signing, personal data).",
                                no_args_is_help=True)
app.add_typer(network_keys_app, name="keys")

# soft wrap: a message is one line however long (a script piping it reads it whole, never cut at 80
# columns); a table keeps its layout (``show``)
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
UNBOUNDED = 1_000_000  # columns a table is measured in: its natural width, not the console's


def literal(value: object) -> str:
    """A value the network stored (a partner's name, a receiver's answer, an e-mail address; None is
    empty) for a Rich table cell or message: printed as it is, never read as markup (``[/]`` would
    fail the command, ``[b]AirLink`` would be shown as ``AirLink``)."""
    return "" if value is None else escape(str(value))


def show(renderable: Table | str) -> None:
    """A table (or a message) on standard output; piped or redirected (not a terminal), a table is as
    wide as its widest row, so no cell is cut (``2026-1…``) for a reader that is not a person at an
    80-column terminal."""
    if not isinstance(renderable, Table) or console.is_terminal:
        console.print(renderable)
        return
    natural = console.measure(renderable, options=console.options.update_width(UNBOUNDED)).maximum
    Console(file=console.file, width=max(console.width, natural)).print(renderable)  # print() never passes its width


# Exit statuses (docs/operations.md, "Exit status"): a script tells "fix the command" from "fix the system"
MISTAKE = 2  # the operator's input or configuration is wrong, or the network refuses the request
TROUBLE = 1  # the command ran and found a problem in what it checks, or the system failed under it


def fail(message: str, code: int = MISTAKE) -> None:
    """One line on standard error, then exit: MISTAKE (2) for what the operator gave the command (an
    option's value, a file named, a thing that is not there, a request refused); TROUBLE (1), given
    explicitly, where the command was right and the system is not (a database, a port, the network's own
    files) or the command found a problem in what it checks."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def whole_minor(text: str, option: str) -> int:
    """An amount of minor units as an operator types it: ASCII digits only. Python's int() also takes
    "1_000", "+5", " 7 " and other scripts' digits ("١٢٣"), which an amount of money must not be read from."""
    if not re.fullmatch(r"[0-9]{1,30}", text):  # 30 digits: past any bound, short of int()'s own limit
        fail(f"Invalid value for '{option}': a whole number of minor units (digits 0-9 only, e.g. 1200), "
             f"not {text!r}")
    return int(text)


def _logging() -> None:
    from shared.observability import configure_logging

    configure_logging(get_settings().log_format)


def _require_database(url: str, *, explicit: bool = False) -> None:
    """For a command that only reads: the database at ``url`` must be there (a missing embedded SQLite
    file is one line naming the setting that chose it, exit 2), never created. ``explicit``: the URL
    was given to the command rather than taken from the settings."""
    from shared.db.database import require_existing

    settings = get_settings()
    require_existing(url, "POINTSNET_DATABASE_URL" if explicit or settings.database_url else "POINTSNET_DATA_DIR")


def _network(database_url: str | None = None, *, readonly: bool = False, **kwargs):
    """The network for a command. ``readonly``: the command only reads (a read-only replica must do);
    the time zone and cut-off are checked against the network's record, which is not created, and the
    network's keys are opened, never made, and so is its embedded SQLite database: a missing one is a
    configuration error (one line, exit 2)."""
    from shared.db.migrate import is_current, upgrade
    from shared.network import Network

    settings = get_settings()
    url = database_url or settings.resolved_database_url
    if readonly:  # it reads the network's database: it creates none where it is missing
        _require_database(url, explicit=bool(database_url))
    if not is_current(url):
        # the embedded default keeps itself current, but never by a command that only reads: the previous
        # release may still be serving that database
        if url.startswith("sqlite") and not readonly:
            upgrade(url)
        else:
            fail("the database schema is not current; run `pointsnet db upgrade` first", TROUBLE)
    network = Network(settings, database_url=database_url, create_keys=not readonly, **kwargs)
    if readonly:
        network.check_cycle_settings()
    else:
        network.pin_cycle_settings()
    return network


def _signing_network():
    """The network for a command that signs (a settlement's checkpoint and manifest, a webhook's ``v1a``)
    or looks members up by their sealed data (an erasure): its keys must be the network's, as a server's
    must (``Network.check_keys``), or it signs what ``pointsnet verify`` and partners reject, or misses what
    it must erase. One line, exit 2, before anything is written."""
    network = _network()
    network.check_keys()
    return network


def _read_csv(path: Path) -> str:
    """A CSV people made (a partner's log, a year's calendar) as UTF-8 text whatever the locale, a
    leading byte-order mark (as Excel writes) dropped."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
    except UnicodeDecodeError:
        fail(f"cannot read {path}: not UTF-8 text")


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
    except UnicodeDecodeError:
        fail(f"cannot read {path}: not a text file")


# services.bench.SCENARIOS, named here so that --help need not import the benchmarks
BENCH_SCENARIOS = ("batch-post, settle, expire, report, dashboard, peers, verify, batch-ingest, single-earn, "
                   "hot-member, history")


def _configuration_error(error: ValidationError) -> str:
    """One line naming each POINTSNET_* variable that is wrong and what is wrong with it (not its
    value: it may be a database URL with a password)."""
    parts = []
    for problem in error.errors():
        variable, *within = problem["loc"]
        where = f" (at {'.'.join(str(part) for part in within)})" if within else ""
        parts.append(f"POINTSNET_{str(variable).upper()}{where}: {problem['msg']}")
    return "; ".join(parts)


def _undecodable_setting(error: SettingsError) -> str:
    """One line naming the variable whose value could not be decoded (not its value)."""
    field = re.search(r'field "([^"]+)"', str(error))
    variable = f"POINTSNET_{field.group(1).upper()}" if field else "a POINTSNET_* variable"
    cause = error.__cause__
    reason = f"not valid JSON ({cause.msg})" if isinstance(cause, json.JSONDecodeError) else "cannot be decoded"
    return f"{variable}: {reason}"


def is_text(value: str) -> bool:
    """Whether ``value`` is UTF-8 text: bytes that are not (``$'\\xff'``, a password piped in) reach Python
    as lone surrogates, which no database driver, file name or hash can take."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _arguments_are_text() -> None:
    """Every argument UTF-8 text (``is_text``; until 2026-12-07 a traceback in some twenty commands)."""
    for number, argument in enumerate(sys.argv[1:], 1):
        if not is_text(argument):
            err.print(f"[bold red]error:[/] argument {number} is not UTF-8 text", highlight=False, soft_wrap=True)
            sys.exit(MISTAKE)


def main() -> None:
    _arguments_are_text()
    try:
        # not standalone: a usage mistake comes back here to be one line, not click's framed box
        code = app(standalone_mode=False)
    except UsageMistake as error:  # a missing option, a value of the wrong type, an unknown command
        if type(error).__name__ != "NoArgsIsHelpError":  # `pointsnet clearing`: its help, printed already
            err.print(f"[bold red]error:[/] {escape(error.format_message())}", highlight=False, soft_wrap=True)
        sys.exit(error.exit_code)
    except typer.Abort:  # end of input (or Ctrl-C) at a prompt: no answer given (--password-stdin gives one)
        err.print("aborted", highlight=False)
        sys.exit(MISTAKE)
    except ValidationError as error:
        if error.title != "Settings":  # not the configuration: not ours to word
            raise
        err.print(f"[bold red]configuration error:[/] {escape(_configuration_error(error))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except SettingsError as error:  # a value pydantic-settings could not even decode (POINTSNET_TIERS not JSON)
        err.print(f"[bold red]configuration error:[/] {escape(_undecodable_setting(error))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except ConfigurationError as error:  # a key file missing, a keyring not JSON, a data dir not writable
        err.print(f"[bold red]configuration error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except PointsnetError as error:  # a refusal: its stable code, as the API's problem+json carries it
        err.print(f"[bold red]error:[/] {escape(error.code)}: {escape(error.detail)}", highlight=False, soft_wrap=True)
        # what the API answers 4xx (the request) is the operator's to fix; 5xx (a migration stopped, a schema
        # newer than this release, no scratch directory) the system's
        sys.exit(TROUBLE if error.status >= 500 else MISTAKE)
    except MoneyError as error:
        err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except SQLAlchemyError as error:
        err.print(f"[bold red]database error:[/] {escape(str(error.orig if hasattr(error, 'orig') else error).splitlines()[0])}",
                  highlight=False)
        sys.exit(1)
    except OverflowError as error:  # a number too large for the database (SQLite) or the calendar
        err.print(f"[bold red]error:[/] a number is out of range: {escape(str(error))}", highlight=False)
        sys.exit(2)
    sys.exit(code or 0)  # a command's exit (typer.Exit, Ctrl-C's 130); no command returns a value


# the commands, one module per domain: each registers its own on the groups above (in this order
# in --help)
from services.cli import (  # noqa: E402,F401  isort:skip
    serving, ledger, partners, clearing, calendar, programme, privacy, network_keys, webhooks, reports, users,
)
