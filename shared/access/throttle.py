"""Login throttling: too many failed sign-ins for one e-mail address, or from one client
address, within WINDOW refuse further attempts until the window has passed."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, select

from shared.access.errors import LoginThrottled
from shared.db.advisory import lock_until_commit
from shared.db.database import Tx
from shared.models import LoginFailure

WINDOW = timedelta(minutes=15)
PER_EMAIL = 5
PER_CLIENT = 20


def check(tx: Tx, email: str, client: str) -> None:
    since = tx.now - WINDOW

    def failures(column, value):
        return tx.session.execute(select(func.count(), func.min(LoginFailure.at))
                                  .where(column == value, LoginFailure.at > since)).one()

    for column, value, limit in ((LoginFailure.email, email, PER_EMAIL), (LoginFailure.client, client, PER_CLIENT)):
        count, oldest = failures(column, value)
        if count >= limit:
            retry = max(1, int((oldest + WINDOW - tx.now).total_seconds()))
            raise LoginThrottled(f"too many failed sign-ins; try again in {retry // 60 + 1} minutes",
                                 retry_after=retry)


def admit(tx: Tx, email: str, client: str) -> None:
    """Let a sign-in attempt through, or refuse it; an admitted attempt counts as a failure until a
    success clears it. Attempts for one address, and attempts from one client, are admitted one at
    a time: SQLite has one writer, and on PostgreSQL transaction-level advisory locks on the address
    and then on the client do it (always in that order), so two attempts can never both see a count
    below its limit."""
    if tx.is_postgres:
        lock_until_commit(tx.session, "login", email)
        lock_until_commit(tx.session, "login-client", client)
    check(tx, email, client)
    record_failure(tx, email, client)


def record_failure(tx: Tx, email: str, client: str) -> None:
    tx.session.add(LoginFailure(email=email[:320], client=client[:64], at=tx.now))


def forget(tx: Tx, email: str) -> None:
    """A successful sign-in clears the address's failures (the client's stay)."""
    tx.session.execute(delete(LoginFailure).where(LoginFailure.email == email))


def prune(tx: Tx) -> int:
    return tx.session.execute(delete(LoginFailure).where(LoginFailure.at < tx.now - WINDOW)).rowcount
