"""Dashboard users."""

from __future__ import annotations

import sys
from typing import Optional

import typer
from rich.table import Table

from services.cli import users_app, console, fail, is_text, literal, show, _network


def _password(password_stdin: bool) -> str:
    password = (sys.stdin.readline().rstrip("\n") if password_stdin
                else typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    if not is_text(password):  # until 2026-12-07 a traceback from the hasher
        fail("the password is not UTF-8 text")
    return password


@users_app.command("add")
def users_add(email: str,
              role: str = typer.Option(..., "--role", help="operator, finance or partner_viewer."),
              partner: Optional[str] = typer.Option(None, "--partner", help="The partner a partner_viewer sees."),
              language: str = typer.Option("en", "--language", help="en or zh."),
              password_stdin: bool = typer.Option(False, "--password-stdin",
                                                  help="Read the password from standard input (no prompt).")) -> None:
    """Create a dashboard user (the password is hashed with Argon2id; at least 12 characters)."""
    from shared.access import audit, users

    users.check_role(role, partner)  # a typo in the role or language is reported before the password is asked for
    users.check_language(language)
    password = users.new_password(_password(password_stdin))

    def unit(tx):
        user = users.add_user(tx, email, role, password, partner_id=partner, language=language)
        audit.record(tx, None, "user.added", user["id"], email=user["email"], role=role, partner_id=partner)
        return user

    user = _network().tx(unit)
    console.print(f"added {user['email']} ({user['role']}{', partner ' + partner if partner else ''})",
                  markup=False, highlight=False)


@users_app.command("list")
def users_list() -> None:
    """Dashboard users and their roles."""
    from shared.access import users

    table = Table("email", "role", "partner", "language", "created", "status")
    for user in _network(readonly=True).tx(users.list_users, readonly=True):
        table.add_row(literal(user["email"]), user["role"], literal(user["partner_id"]), user["language"],
                      user["created_at"][:19], "disabled" if user["disabled"] else "active")
    show(table)


@users_app.command("disable")
def users_disable(email: str) -> None:
    """Disable a user and end all their sessions."""
    from shared.access import audit, users

    def unit(tx):
        user = users.disable_user(tx, email)
        audit.record(tx, None, "user.disabled", user["id"], email=user["email"])

    _network().tx(unit)
    console.print(f"disabled {email}; their sessions are ended", markup=False, highlight=False)


@users_app.command("password")
def users_password(email: str, password_stdin: bool = typer.Option(False, "--password-stdin")) -> None:
    """Set a user's password (ends their sessions)."""
    from shared.access import audit, users

    password = users.new_password(_password(password_stdin))

    def unit(tx):
        user = users.set_password(tx, email, password)
        audit.record(tx, None, "user.password_set", user["id"], email=user["email"])

    _network().tx(unit)
    console.print(f"password set for {email}; their sessions are ended", markup=False, highlight=False)


@users_app.command("sign-out")
def users_sign_out(email: str) -> None:
    """End every session of a user (revoke)."""
    from shared.access import audit, sessions, users

    def unit(tx):
        user = users.find_user(tx, email)
        ended = sessions.revoke_user(tx, user.id)
        audit.record(tx, None, "user.sessions_revoked", user.id, sessions=ended)
        return ended

    console.print(f"ended {_network().tx(unit)} session(s) of {email}", markup=False, highlight=False)
