"""A member's personal-data rights beside erasure (``members erase``): the subject-access export, and its
consent withdrawn from one partner (``members unlink``)."""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer

from services.cli import members_app, fail, _network


class _Unwritable(Exception):
    """The ``--out`` file failed while it was written (a full disk, a directory in its place…)."""


class _Sink:
    """Where the document goes while the read-only unit writes it: a file (``--out``) or a buffer (standard
    output, printed once the export is recorded). Emptied at the start of each attempt: a unit of work
    retried after a transient conflict writes the document again, whole."""

    def __init__(self, stream):
        self.stream = stream

    def restart(self) -> None:
        self.guarded(lambda: (self.stream.seek(0), self.stream.truncate()))

    def write(self, text: str) -> None:
        self.guarded(lambda: self.stream.write(text))

    @staticmethod
    def guarded(action) -> None:
        try:
            action()
        except OSError as error:
            raise _Unwritable(error.strerror or str(error)) from error


class _Exists(Exception):
    """The ``--out`` file appeared while the document was written (without ``--force``): it is kept."""


@contextmanager
def _stops_raise():
    """For the time the command runs, SIGTERM and SIGHUP (a stop, a closed terminal) raise
    SystemExit(128 + the signal) in it, as an exception does, so that its clean-up runs: the document
    written so far goes. The previous handlers are put back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers can be set from the main thread only
        return

    stopped: list[int] = []

    def stop(signum, frame):
        stopped.append(signum)
        raise SystemExit(128 + signum)

    previous = {number: signal.signal(number, stop) for number in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    except BaseException:
        if stopped:  # stopped all the same when the clean-up raised over the stop (a database connection the
            # signal interrupted mid-statement refuses its rollback): exit as stopped, not "database error"
            raise SystemExit(128 + stopped[0]) from None
        raise
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)


def _open_out(out: Path, force: bool):
    """The file the document is written to, mode 0600, beside ``out`` (``.NAME.XXXX.part``), and what
    publishes it as ``out`` once its export is recorded: without ``--force`` a hard link (refused if ``out``
    appeared meanwhile: never an overwrite) then the temporary name goes, with it a rename over ``out``.
    Without ``--force`` an existing ``out`` refuses the command before anything is read."""
    try:
        if out.is_dir():
            fail(f"--out {out} is a directory: name the file to write")
    except OSError as error:  # a name too long, a path through a file: nothing could be written there
        fail(f"--out {out} cannot be written: {error.strerror}")
    if not force and os.path.lexists(out):
        fail(f"--out {out} exists: give --force to overwrite it")
    try:
        fd, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")  # mode 0600
    except OSError as error:
        fail(f"--out {out} cannot be written: {error.strerror}")

    def publish() -> None:
        try:
            if force:
                os.replace(temporary, out)
                return
            os.link(temporary, out)
        except FileExistsError:
            raise _Exists() from None
        except OSError as error:
            raise _Unwritable(error.strerror or str(error)) from error
        os.unlink(temporary)

    return os.fdopen(fd, "w", encoding="utf-8"), Path(temporary), publish


@members_app.command("export")
def members_export(member_id: str,
                   out: Optional[Path] = typer.Option(None, "--out", help="Write the document to this file "
                                                      "(mode 0600) rather than to standard output."),
                   force: bool = typer.Option(False, "--force", help="Overwrite an existing --out file.")) -> None:
    """Everything the network holds about a member (a data subject's access request): one JSON document
    with its contacts decrypted, partner links, balance, open lots, holds, awards, referrals, the members
    merged into it, the alerts naming it and its whole ledger history (with each entry's purchase details).
    Recorded in the audit log (the member id, never its contacts) before --out takes the document: a
    failure or a stop (SIGTERM, SIGHUP) before then leaves no file. An erased member's document says so and
    holds no personal data."""
    from shared.access import audit
    from shared.members.export import export_member

    network = _network(readonly=True)  # opens the keys, never makes them
    keyring = network.keyring

    def unit(tx):
        sink.restart()
        return export_member(tx, keyring, member_id, sink.write)

    with _stops_raise():  # a stop meanwhile leaves no document behind, whole or in part
        stream, written, publish = _open_out(out, force) if out is not None else (io.StringIO(), None, None)
        sink = _Sink(stream)
        try:
            with stream:
                noted = network.tx(unit, readonly=True)
                if out is not None:  # whole on disk (under its temporary name) before it is recorded
                    sink.guarded(lambda: (stream.flush(), os.fsync(stream.fileno())))
                # recorded before the document leaves the command: an export the log does not show never happens
                network.tx(lambda tx: audit.record(tx, None, "member.exported", member_id,
                                                   command="pointsnet members export", **noted))
                if out is None:
                    sys.stdout.write(stream.getvalue())
            if publish is not None:
                publish()
        except BaseException as error:
            if written is not None:
                written.unlink(missing_ok=True)
            if isinstance(error, _Unwritable):
                fail(f"--out {out} cannot be written: {error}")
            if isinstance(error, _Exists):
                fail(f"--out {out} appeared while the document was written and is kept as it was: the export "
                     "is recorded, its document not written; give --force to overwrite it, or another --out")
            raise
    if out is not None:
        typer.echo(f"member {member_id} exported to {out}", err=True)


@members_app.command("unlink")
def members_unlink(member_id: str, partner_id: str,
                   reason: Optional[str] = typer.Option(None, "--reason", help="The operator's reference for the "
                                                        "request (kept with the record; no personal data).")) -> None:
    """The member withdraws its consent from one partner: that partner's link to it, its customer reference
    and its unused link tokens go; the member's points and history stay. Recorded (member_unlinks, and the
    audit log); the partner hears member.unlinked. Refused while the partner holds an open hold for it."""
    from shared.access import audit
    from shared.members.consent import unlink

    def unit(tx):
        record = unlink(tx, partner_id, member_id, requested_by="operator", reason=reason)
        audit.record(tx, None, "member.unlinked", member_id, partner_id=partner_id, reason=reason,
                     unlink_id=record["id"], command="pointsnet members unlink")
        return record

    print(json.dumps(_network().tx(unit), indent=2))
