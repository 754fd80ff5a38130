"""Partner performance reports and network analytics."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from services.cli import TROUBLE, reports_app, err, fail, _network

REPORT_FORMAT = typer.Option("json", "--format", help="json, csv or html")
REPORT_OUT = typer.Option(None, "--out", help="Write the report to this file instead of standard output.")


def _emit_report(document: str, out: Optional[Path]) -> None:
    if out is None:
        sys.stdout.write(document)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(document, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write the report to {out}: {exc.strerror or exc}")
    err.print(f"wrote {out}", highlight=False, markup=False)


def _report_period(first: str, last: str, fmt: str):
    from shared.reports.period import Period
    from shared.reports.render import FORMATS

    if fmt not in FORMATS:
        fail(f"--format is one of {', '.join(FORMATS)}, not {fmt!r}")
    return Period.parse(first, last)


@reports_app.command("partner")
def reports_partner(partner_id: str,
                    first: str = typer.Option(..., "--from", help="First cycle, YYYY-MM-DD."),
                    last: str = typer.Option(..., "--to", help="Last cycle, YYYY-MM-DD (included)."),
                    fmt: str = REPORT_FORMAT, out: Optional[Path] = REPORT_OUT) -> None:
    """One partner's performance report for a period of cycles."""
    from shared.reports.service import partner_document

    period = _report_period(first, last, fmt)
    _emit_report(partner_document(_network(readonly=True), partner_id, period, fmt), out)


@reports_app.command("network")
def reports_network(first: str = typer.Option(..., "--from", help="First cycle, YYYY-MM-DD."),
                    last: str = typer.Option(..., "--to", help="Last cycle, YYYY-MM-DD (included)."),
                    fmt: str = REPORT_FORMAT, out: Optional[Path] = REPORT_OUT) -> None:
    """Network analytics for operators for a period of cycles."""
    from shared.reports.service import network_document

    period = _report_period(first, last, fmt)
    _emit_report(network_document(_network(readonly=True), period, fmt), out)


@reports_app.command("publish")
def reports_publish() -> None:
    """Write the reports of settled cycles and complete months not written yet (what the job does, all at once)."""
    from shared.reports.delivery import publish_due

    try:
        written = publish_due(_network(), limit=None)
    except OSError as exc:  # the data directory's reports/ cannot be written (full, read-only): until
        # 2026-12-07 a traceback; what was published stays whole, and the next run writes the rest
        fail(f"the reports cannot be written in {exc.filename or 'the data directory'}: {exc.strerror or exc} "
             f"(POINTSNET_DATA_DIR); the sets written before stay, the next run writes the rest", TROUBLE)
    print(json.dumps(written))
