"""Server-side dashboard sessions. The browser holds a random token; the database holds its
SHA-256, the user, and the session's CSRF token. A session ends when signed out, revoked,
idle for IDLE (never sooner: see IDLE_LIMIT), older than LIFETIME, or when its user is disabled."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update

from shared.db.database import Tx
from shared.models import StaffSession, StaffUser

IDLE = timedelta(minutes=30)
LIFETIME = timedelta(hours=12)
TOUCH_EVERY = timedelta(minutes=1)  # last_seen is written at most this often
# A request within TOUCH_EVERY of last_seen_at is not written down, so the last request may be up to
# TOUCH_EVERY later than last_seen_at: a session ends IDLE to IDLE + TOUCH_EVERY after it, never sooner.
IDLE_LIMIT = IDLE + TOUCH_EVERY


@dataclass(frozen=True)
class Session:
    token_hash: str
    csrf_token: str
    user_id: str
    email: str
    role: str
    partner_id: str | None
    language: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(tx: Tx, user: StaffUser, client: str | None = None) -> str:
    """Start a session for a user who just proved who they are; returns the cookie's token."""
    token = secrets.token_urlsafe(32)
    tx.session.add(StaffSession(token_hash=_hash(token), user_id=user.id, csrf_token=secrets.token_urlsafe(32),
                                created_at=tx.now, last_seen_at=tx.now, client=(client or "")[:200]))
    return token


def resolve(tx: Tx, token: str | None) -> Session | None:
    """The live session for this cookie token, or None."""
    if not token or len(token) > 100:
        return None
    row = tx.session.execute(select(StaffSession, StaffUser).join(StaffUser, StaffUser.id == StaffSession.user_id)
                             .where(StaffSession.token_hash == _hash(token))).first()
    if row is None:
        return None
    session, user = row
    if (session.revoked_at is not None or user.disabled_at is not None
            or tx.now - session.last_seen_at > IDLE_LIMIT or tx.now - session.created_at > LIFETIME):
        return None
    if tx.now - session.last_seen_at > TOUCH_EVERY:
        session.last_seen_at = tx.now
    return Session(session.token_hash, session.csrf_token, user.id, user.email, user.role, user.partner_id,
                   user.language)


def revoke(tx: Tx, token_hash: str) -> None:
    tx.session.execute(update(StaffSession).where(StaffSession.token_hash == token_hash,
                                                  StaffSession.revoked_at.is_(None)).values(revoked_at=tx.now))


def revoke_user(tx: Tx, user_id: str) -> int:
    """Sign a user out everywhere."""
    return tx.session.execute(update(StaffSession).where(StaffSession.user_id == user_id,
                                                         StaffSession.revoked_at.is_(None))
                              .values(revoked_at=tx.now)).rowcount


def live_sessions(tx: Tx, user_id: str) -> list[dict]:
    rows = tx.session.scalars(select(StaffSession).where(StaffSession.user_id == user_id,
                                                         StaffSession.revoked_at.is_(None),
                                                         StaffSession.last_seen_at >= tx.now - IDLE_LIMIT)
                              .order_by(StaffSession.created_at.desc()).limit(50))
    return [{"id": s.token_hash[:12], "created_at": s.created_at.isoformat(), "last_seen_at": s.last_seen_at.isoformat(),
             "client": s.client} for s in rows]
