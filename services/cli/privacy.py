"""A member's personal-data rights beside erasure (``members erase``): the subject-access export."""

from __future__ import annotations

import io
import os
import sys
import tempfile
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


def _open_out(out: Path, force: bool):
    """The file the document is written to, mode 0600, and what makes it ``out`` once complete. Without
    ``--force`` the name is taken at once (an existing file refuses the command before anything is read);
    with it, a file beside it replaces ``out`` only once the document is whole."""
    if out.is_dir():
        fail(f"--out {out} is a directory: name the file to write")
    try:
        if not force:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            return os.fdopen(fd, "w", encoding="utf-8"), out, lambda: None
        fd, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")  # mode 0600
        return os.fdopen(fd, "w", encoding="utf-8"), Path(temporary), lambda: os.replace(temporary, out)
    except FileExistsError:
        fail(f"--out {out} exists: give --force to overwrite it")
    except OSError as error:
        fail(f"--out {out} cannot be written: {error.strerror}")


@members_app.command("export")
def members_export(member_id: str,
                   out: Optional[Path] = typer.Option(None, "--out", help="Write the document to this file "
                                                      "(mode 0600) rather than to standard output."),
                   force: bool = typer.Option(False, "--force", help="Overwrite an existing --out file.")) -> None:
    """Everything the network holds about a member (a data subject's access request): one JSON document
    with its contacts decrypted, partner links, balance, open lots, holds, awards, referrals, the members
    merged into it and its whole ledger history. Recorded in the audit log (the member id, never its
    contacts). An erased member's document says so and holds no personal data."""
    from shared.access import audit
    from shared.members.export import export_member

    network = _network(readonly=True)  # opens the keys, never makes them
    keyring = network.keyring
    stream, written, finish = _open_out(out, force) if out is not None else (io.StringIO(), None, lambda: None)
    sink = _Sink(stream)

    def unit(tx):
        sink.restart()
        return export_member(tx, keyring, member_id, sink.write)

    try:
        with stream:
            noted = network.tx(unit, readonly=True)
            # recorded before the document leaves the command: an export the log does not show never happens
            network.tx(lambda tx: audit.record(tx, None, "member.exported", member_id,
                                               command="pointsnet members export", **noted))
            if out is None:
                sys.stdout.write(stream.getvalue())
            else:
                sink.guarded(lambda: (stream.flush(), os.fsync(stream.fileno())))
        sink.guarded(finish)
    except BaseException as error:
        if written is not None:
            written.unlink(missing_ok=True)
        if isinstance(error, _Unwritable):
            fail(f"--out {out} cannot be written: {error}")
        raise
    if out is not None:
        typer.echo(f"member {member_id} exported to {out}", err=True)
