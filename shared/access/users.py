"""Staff users of the dashboard. Passwords are hashed with Argon2id (argon2-cffi)."""

from __future__ import annotations

from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update

from shared.access.errors import InvalidUser
from shared.db.database import Tx
from shared.db.types import new_id
from shared.models import Partner, StaffSession, StaffUser
from shared.models.access import ROLES

MIN_PASSWORD = 12
# The languages the dashboard speaks (services/dashboard/i18n.py, LANGUAGES): a user's is one of them.
LANGUAGES = ("en", "zh")
_hasher = PasswordHasher()
# Verifying against this when the e-mail is unknown keeps the answer's timing the same.
_DUMMY = _hasher.hash("not a real password, only for timing")


def _public(user: StaffUser) -> dict:
    return {"id": user.id, "email": user.email, "role": user.role, "partner_id": user.partner_id,
            "language": user.language, "created_at": user.created_at.isoformat(),
            "disabled": user.disabled_at is not None}


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320 or email.startswith("@") or email.endswith("@"):
        raise InvalidUser(f"not an e-mail address: {email!r}")
    return email


@dataclass(frozen=True)
class NewPassword:
    """A password checked for length and hashed, made before the transaction that stores it:
    Argon2 takes about a tenth of a second, and inside a write transaction it would hold SQLite's
    one write lock (every partner request's) that long, once more at every retry of the unit."""

    hash: str = field(repr=False)


def new_password(password: str) -> NewPassword:
    if len(password) < MIN_PASSWORD:
        raise InvalidUser(f"the password must have at least {MIN_PASSWORD} characters")
    return NewPassword(_hasher.hash(password))


def check_role(role: str, partner_id: str | None) -> None:
    """Refuse a role that does not exist, or a partner given with the wrong role (before a password is asked)."""
    if role not in ROLES:
        raise InvalidUser(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    if (role == "partner_viewer") != (partner_id is not None):
        raise InvalidUser("a partner_viewer needs --partner, and only a partner_viewer may have one")


def check_language(language: str) -> None:
    """Refuse a language the dashboard does not speak (before a password is asked)."""
    if language not in LANGUAGES:
        raise InvalidUser(f"unknown language {language[:20]!r}: choose one of {', '.join(LANGUAGES)}")


def add_user(tx: Tx, email: str, role: str, password: NewPassword, *, partner_id: str | None = None,
             language: str = "en") -> dict:
    email = normalise_email(email)
    check_role(role, partner_id)
    check_language(language)
    if partner_id is not None and tx.session.get(Partner, partner_id) is None:
        raise InvalidUser(f"unknown partner {partner_id}")
    if tx.session.scalar(select(StaffUser.id).where(StaffUser.email == email)):
        raise InvalidUser(f"a user {email} exists already")
    user = StaffUser(id=new_id("usr"), email=email, role=role, partner_id=partner_id,
                     password_hash=password.hash, language=language, created_at=tx.now)
    tx.session.add(user)
    tx.session.flush()
    return _public(user)


@dataclass(frozen=True)
class Verified:
    """A password checked against a user's stored hash, outside any transaction."""

    user_id: str
    password_hash: str  # the hash it was checked against


CHANGED = "changed"  # confirm_login: the stored hash is not the one the password was checked against


def login_candidate(tx: Tx, email: str) -> tuple[str, str] | None:
    """(id, password hash) of the active user with this e-mail, or None."""
    try:
        email = normalise_email(email)
    except InvalidUser:
        return None
    row = tx.session.execute(select(StaffUser.id, StaffUser.password_hash).where(
        StaffUser.email == email, StaffUser.disabled_at.is_(None))).first()
    return (row.id, row.password_hash) if row else None


def verify_password(candidate: tuple[str, str] | None, password: str) -> Verified | None:
    """Argon2, the same work whether or not the user exists. It is slow by design (about 0.1 s of
    CPU), so it runs with no transaction open: on SQLite a sign-in must not hold the write lock that
    every partner request needs."""
    user_id, stored = candidate if candidate else (None, _DUMMY)
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    return Verified(user_id, stored) if user_id else None


def confirm_login(tx: Tx, verified: Verified | None) -> StaffUser | str | None:
    """The user the password was verified for, if still active; None if not (or the password was
    wrong); CHANGED if the stored hash changed meanwhile (a new password, or another sign-in's
    upgrade of the hash): check the password again against the new one."""
    user = tx.session.get(StaffUser, verified.user_id) if verified else None
    if user is None or user.disabled_at is not None:
        return None
    return user if user.password_hash == verified.password_hash else CHANGED


def upgraded_hash(verified: Verified, password: str) -> str | None:
    """After a sign-in: the password hashed with today's parameters, if its stored hash is older
    (made with no transaction open; stored by store_upgraded_hash)."""
    return _hasher.hash(password) if _hasher.check_needs_rehash(verified.password_hash) else None


def store_upgraded_hash(tx: Tx, verified: Verified, new_hash: str) -> None:
    """Replace the hash only if it is still the one the password was checked against."""
    tx.session.execute(update(StaffUser).where(StaffUser.id == verified.user_id,
                                               StaffUser.password_hash == verified.password_hash)
                       .values(password_hash=new_hash))


def list_users(tx: Tx) -> list[dict]:
    return [_public(u) for u in tx.session.scalars(select(StaffUser).order_by(StaffUser.email))]


def users_page(tx: Tx, *, offset: int = 0, limit: int = 50) -> tuple[list[dict], int]:
    """A page of users in e-mail order, and how many there are."""
    rows = tx.session.scalars(select(StaffUser).order_by(StaffUser.email, StaffUser.id).offset(offset).limit(limit))
    return [_public(u) for u in rows], tx.session.scalar(select(func.count()).select_from(StaffUser)) or 0


def find_user(tx: Tx, email: str) -> StaffUser:
    user = tx.session.scalar(select(StaffUser).where(StaffUser.email == normalise_email(email)))
    if user is None:
        raise InvalidUser(f"no user {email}")
    return user


def disable_user(tx: Tx, email: str) -> dict:
    """Disable a user and end every session they have."""
    user = find_user(tx, email)
    user.disabled_at = user.disabled_at or tx.now
    tx.session.execute(update(StaffSession).where(StaffSession.user_id == user.id,
                                                  StaffSession.revoked_at.is_(None)).values(revoked_at=tx.now))
    return _public(user)


def set_password(tx: Tx, email: str, password: NewPassword) -> dict:
    user = find_user(tx, email)
    user.password_hash = password.hash
    tx.session.execute(update(StaffSession).where(StaffSession.user_id == user.id,
                                                  StaffSession.revoked_at.is_(None)).values(revoked_at=tx.now))
    return _public(user)


def count_users(tx: Tx) -> int:
    return tx.session.scalar(select(func.count()).select_from(StaffUser)) or 0
