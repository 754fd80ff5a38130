"""Jinja2 pages with what every page needs: the user, the CSRF token, labels and formatting."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from markupsafe import Markup

from services.dashboard.i18n import LANGUAGES, from_accept_language, pick_language, translate
from services.dashboard.messages import problem_text, reason_text
from services.dashboard.security import LANG_COOKIE, current_session
from shared.programme.days import last_day as last_usable_day
from shared.reports.labels import format_money, format_points, format_rate

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

# What each role finds in the navigation (pages check roles themselves; this only hides links).
NAV = [
    ("overview", "/", ("operator", "finance")),
    ("partners", "/partners", ("operator", "finance")),
    ("members", "/members", ("operator", "finance")),
    ("ledger", "/ledger", ("operator", "finance")),
    ("settlement", "/settlement", ("operator", "finance")),
    ("reports", "/reports", ("operator", "finance")),
    ("my_partner", "/my-partner", ("partner_viewer",)),
    ("approvals", "/approvals", ("operator",)),
    ("audit", "/audit", ("operator", "finance")),
    ("users", "/users", ("operator",)),
]


def language(request: Request) -> str:
    """Signed in: the user's own choice, wherever they sign in (a browser's cookie may be stale:
    left by another user, or by a choice made since on another machine). Signed out: the cookie,
    this browser's last choice; without one, the language the browser asks for (Accept-Language)."""
    session = current_session(request)
    if session is not None:
        return pick_language(session.language)
    return pick_language(request.cookies.get(LANG_COOKIE),
                         from_accept_language(request.headers.get("accept-language")))


def chart_data(value) -> Markup:
    """Data for a chart, as JSON safe to place inside <script type="application/json">."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _local(context, value) -> datetime | None:
    """``value`` (a stored UTC instant, or its ISO text) in the network's time zone; None for none."""
    if value is None or value == "":
        return None
    instant = datetime.fromisoformat(value) if isinstance(value, str) else value
    if instant.tzinfo is None:  # stored instants are UTC
        instant = instant.replace(tzinfo=timezone.utc)
    try:
        return instant.astimezone(context["request"].app.state.network.settings.zone)
    except OverflowError:  # within hours of the calendar's end (a date far ahead, 9999-12-31): shown in UTC
        return instant


@pass_context
def local_date(context, value) -> str:
    """The network's local day of an instant (people see local dates: ARCHITECTURE.md, "Time")."""
    local = _local(context, value)
    return local.date().isoformat() if local else ""


@pass_context
def local_time(context, value, seconds: bool = True) -> str:
    """An instant as the network's local date and time, with its UTC offset: ``2026-11-21 00:35:00 +08:00``."""
    local = _local(context, value)
    if local is None:
        return ""
    offset = local.strftime("%z")  # ±HHMM, or ±HHMMSS for a historical offset
    offset = ":".join([offset[:3], offset[3:5]] + ([offset[5:]] if offset[5:] else []))
    return f"{local.strftime('%Y-%m-%d %H:%M:%S' if seconds else '%Y-%m-%d %H:%M')} {offset}"


@pass_context
def last_day(context, value) -> str:
    """The last local day on which points expiring at ``value`` can be used: the day of the instant
    before they expire, as the member's expiry reminder names it (docs/programme.md). Points that
    expire at a local midnight were last usable the day before."""
    local = _local(context, value)
    return last_usable_day(local, local.tzinfo).isoformat() if local else ""  # already local: no overflow


TEMPLATES.env.filters.update(local_date=local_date, local_time=local_time, last_day=last_day)
# ``|tojson`` (a request's parameters, an audit entry's detail) writes text as it was typed, Chinese
# included, not as \u escapes; Jinja still escapes <, >, & and ' for HTML
TEMPLATES.env.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}


def page(request: Request, template: str, status_code: int = 200, **context):
    session = current_session(request)
    lang = language(request)
    settings = request.app.state.network.settings
    base = request.scope.get("root_path") or ""
    nav = [(key, base + path) for key, path, roles in NAV if session and session.role in roles]
    return TEMPLATES.TemplateResponse(request, template, status_code=status_code, context={
        "staff": session, "csrf": session.csrf_token if session else "", "lang": lang, "languages": LANGUAGES,
        "t": lambda key, **values: translate(key, lang, **values), "nav": nav, "base": base,
        "problem": lambda code, detail, extra=None: problem_text(code, detail, lang, extra),
        "reason": lambda text: reason_text(text, lang),
        "points": format_points, "money": lambda minor: format_money(minor, settings.currency),
        "rate": format_rate, "chart_data": chart_data, "currency": settings.currency,
        "path": request.url.path,
    } | context)
