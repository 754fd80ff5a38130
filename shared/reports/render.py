"""One report, three formats: JSON and CSV for machines, a self-contained HTML page for people.

All three are made from the same report dictionary. The CSV is that dictionary flattened to
``section,name,value`` rows; the HTML shows the same values and carries each of them, unformatted,
in a ``data-key``/``data-value`` pair named like the CSV row (``section.name``).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from shared.reports import charts
from shared.reports.labels import format_money, format_points, format_rate, label
from shared.reports.spreadsheet import spreadsheet_row, unquoted

FORMATS = {"json": "application/json", "csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8"}
ID_KEYS = ("cycle_date", "month", "partner_id", "campaign")
CSV_COLUMNS = ("section", "name", "value")
_templates = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                         autoescape=select_autoescape(["html", "j2"]), undefined=StrictUndefined,
                         trim_blocks=True, lstrip_blocks=True)


def to_json(report: dict) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def _item_key(item: dict) -> tuple[str, dict]:
    if "funder" in item and "redeemer" in item:
        return f"{item['funder']}>{item['redeemer']}", {k: v for k, v in item.items() if k not in ("funder", "redeemer")}
    for key in ID_KEYS:
        if key in item:
            return str(item[key]), {k: v for k, v in item.items() if k != key}
    raise ValueError(f"a report list item without an identifying field: {sorted(item)}")


def flatten(report: dict) -> list[tuple[str, str, str]]:
    """(section, name, value) rows: nested names joined with dots, list items named by their id."""
    rows: list[tuple[str, str, str]] = []

    def walk(section: str, path: str, value) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(section, f"{path}.{key}" if path else key, inner)
        elif isinstance(value, list):
            if not value:
                rows.append((section, path, ""))
            for item in value:
                if isinstance(item, dict):
                    key, rest = _item_key(item)
                    walk(section, f"{path}.{key}" if path else key, rest)
                else:
                    rows.append((section, path, str(item)))
        else:
            rows.append((section, path, "" if value is None else str(value)))

    for section, value in report.items():
        walk(section, "", value)
    return rows


def to_csv(report: dict) -> str:
    """The flattened rows, each text cell that a spreadsheet would take for a formula (a partner or
    campaign named ``=...``) with a leading ``'`` (shared/reports/spreadsheet.py); numbers as they are."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(spreadsheet_row(row) for row in flatten(report))
    return out.getvalue()


def csv_values(text: str) -> dict[str, str]:
    """``section.name`` -> value of a report CSV (what the HTML's data-key/data-value pairs mirror),
    the leading ``'`` of a quoted formula-like cell removed again."""
    values = {}
    for row in csv.DictReader(io.StringIO(text)):
        section, name = unquoted(row["section"]), unquoted(row["name"])
        values[f"{section}.{name}" if name else section] = unquoted(row["value"])
    return values


def _helpers(report: dict, locale: str) -> dict:
    currency = report["period"]["currency"]

    def cell(key: str, value, kind: str = "points") -> Markup:
        if kind == "money":
            shown = format_money(value, currency)
        elif kind == "rate":
            shown = format_rate(value)
        elif kind == "points":
            shown = format_points(value)
        else:
            shown = "" if value is None else str(value)
        raw = "" if value is None else str(value)
        return Markup(f'<td class="num" data-key="{escape(key)}" data-value="{escape(raw)}">{escape(shown)}</td>')

    def month_label(month: str) -> str:
        return label(f"month.{month}", locale) if month in ("due", "later") else month

    return {"L": lambda key: label(key, locale), "cell": cell, "money": lambda v: format_money(v, currency),
            "month_label": month_label, "locale": locale}


def _charts(report: dict, locale: str) -> dict:
    L = lambda key: label(key, locale)  # noqa: E731
    days = [d["cycle_date"] for d in report["daily"]]
    names = [k for k in report["daily"][0] if k != "cycle_date"] if report["daily"] else []
    daily = charts.bar_chart("chart-daily", days, [(n, L(f"series.{n}"), [d[n] for d in report["daily"]])
                                                   for n in names], title=L("section.daily"))
    schedule = report["liability"]["expiry_schedule"]
    months = [s["month"] for s in schedule]
    expiry = charts.bar_chart("chart-expiry", months, [("points", L("series.points"), [s["points"] for s in schedule])],
                              height=220, title=L("section.expiry"),
                              category_labels=[_helpers(report, locale)["month_label"](m) for m in months])
    if report["report"] == "network":
        parties = [(p["partner_id"], p["name"]) for p in report["flow_matrix"]["parties"]]
        cells = {(c["funder"], c["redeemer"]): c["points"] for c in report["flow_matrix"]["cells"]}
    else:
        me = report["partner"]["id"]
        flows = report["flows"]
        others = {f["partner_id"]: f["name"] for f in flows["spent_elsewhere"] + flows["spent_here"]}
        parties = [(me, report["partner"]["name"])] + sorted(others.items(), key=lambda item: (item[1], item[0]))
        cells = {(me, f["partner_id"]): f["points"] for f in flows["spent_elsewhere"]}
        cells |= {(f["partner_id"], me): f["points"] for f in flows["spent_here"]}
        own = report["points"]["redeemed_here_own_points"]
        if own:
            cells[(me, me)] = own
    focus = report["partner"]["id"] if report["report"] == "partner" else None
    matrix = charts.matrix_chart("chart-flows", parties, cells, title=L("section.matrix"), focus=focus)
    return {"chart_daily": daily, "chart_expiry": expiry, "chart_flows": matrix}


def to_html(report: dict, locale: str = "en") -> str:
    template = _templates.get_template(f"{report['report']}.html.j2")
    return template.render(r=report, **_helpers(report, locale), **_charts(report, locale))


def render(report: dict, fmt: str, locale: str = "en") -> str:
    if fmt == "json":
        return to_json(report)
    if fmt == "csv":
        return to_csv(report)
    if fmt == "html":
        return to_html(report, locale)
    raise ValueError(f"unknown report format {fmt!r}; choose json, csv or html")
