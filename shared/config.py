"""Network configuration: one Settings object read from POINTSNET_* variables."""

from __future__ import annotations

import ipaddress
import math
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.programme.config import TierConfig


class ConfigurationError(ValueError):
    """A setting the network cannot work with, found only when it is used (a data directory that
    cannot be written): the message names the variable, for the one-line ``configuration error: …``
    of the command line."""


class KeyConfigurationError(ConfigurationError):
    """A configured key that cannot be used (shared/keys.py raises it): the message names the variable
    (never the key)."""


# Every duration is at most 100 years: far beyond any business use, and far enough from the end of
# the calendar (year 9999) that adding one to the network's time never overflows a datetime.
MAX_DAYS = 36500
MAX_HOURS = MAX_DAYS * 24
MAX_MINUTES = MAX_HOURS * 60
# A job's batch: far above any useful transaction, far below the numbers its queries compute from it
MAX_BATCH_SIZE = 1_000_000
# What limits' Redis storages accept (POINTSNET_REDIS_URL); checked for shape only, never connected to.
REDIS_SCHEMES = ("redis", "rediss", "redis+unix", "redis+cluster", "redis+sentinel")
# Defaults checked without importing the library that checks any other value (phonenumbers, limits:
# about 0.1 s of every command line); tests/ops/test_settings_imports.py holds them to those checks.
DEFAULT_REGION = "CN"
DEFAULT_RATE_LIMIT = "6000/minute"


def _positive_seconds(text: str) -> bool:
    try:
        seconds = float(text)
    except ValueError:
        return False
    return 0 < seconds and math.isfinite(seconds)


AUTHORITY_HOST = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?")  # a DNS name or IPv4 address, lower-cased
DEFAULT_PORTS = ("443", "80")  # dropped: partners sign https://HOST/… as "HOST" (RFC 9421 @authority)


def public_authority(value: str) -> str:
    """POINTSNET_PUBLIC_AUTHORITY as partners sign it (``@authority``): ``host`` or ``host:port``, the
    host lower-cased, a default port (443, or 80) dropped; a scheme, path, query, fragment, user
    information or empty host is refused (each of those refused every request)."""
    text = value.strip()
    if not text:
        raise ValueError("is empty: set the host[:port] partners sign (e.g. points.example.com), or leave it unset")
    if "://" in text:
        raise ValueError("give the host[:port] partners sign without a scheme (points.example.com, not "
                         "https://points.example.com)")
    if any(mark in text for mark in "/?#"):
        raise ValueError("the host[:port] partners sign, with no path, query or fragment (e.g. points.example.com)")
    if "@" in text:
        raise ValueError("the host[:port] partners sign, with no user information (e.g. points.example.com)")
    bracketed = re.fullmatch(r"\[([^\]]*)\](?::(.*))?", text)
    if bracketed:  # an IPv6 address
        host, port = bracketed.group(1), bracketed.group(2)
        try:
            host = f"[{ipaddress.IPv6Address(host).compressed}]"
        except ValueError:
            raise ValueError("not a host[:port]: the host in brackets is not an IPv6 address") from None
    else:
        host, colon, port = text.partition(":")
        host, port = host.lower(), port if colon else None
        if not AUTHORITY_HOST.fullmatch(host):
            raise ValueError("not a host[:port] (e.g. points.example.com or points.example.com:8443)")
    if port is not None:
        if not (port.isascii() and port.isdigit() and 0 < int(port) <= 65535):
            raise ValueError("not a host[:port]: the port is a number from 1 to 65535")
        port = str(int(port))
    return host if port is None or port in DEFAULT_PORTS else f"{host}:{port}"


def default_jobs() -> int:
    """Connections for work split over one snapshot (verify, settlement): the cores, at most 8."""
    return min(os.cpu_count() or 1, 8)


class Settings(BaseSettings):
    """Defaults run on one machine with nothing installed: SQLite in ./pointsnet-data."""

    model_config = SettingsConfigDict(env_prefix="POINTSNET_", extra="ignore")

    data_dir: Path = Path("pointsnet-data")
    database_url: str | None = None
    timezone: str = "Asia/Shanghai"
    currency: str = "CNY"
    # Language of the labels of human-readable reports (HTML): en or zh.
    locale: Literal["en", "zh"] = "en"
    default_region: str = DEFAULT_REGION
    # Business-day cut-off, minutes after local midnight (0 = midnight).
    cycle_cutoff_minutes: int = Field(default=0, ge=0, lt=24 * 60)
    # How far before posted_at a partner's occurred_at may lie.
    occurred_at_window_hours: int = Field(default=72, ge=0, le=MAX_HOURS)
    # When lots expire (see shared/ledger/expiry_policy.py): never, days:N, rolling:N (months),
    # end_of_month:N, end_of_quarter:N, end_of_year:N — in the network time zone.
    expiry_policy: str = "rolling:12"
    # A returned lot that expired meanwhile lives at least this long again.
    return_grace_days: int = Field(default=30, ge=0, le=MAX_DAYS)
    hold_timeout_minutes: int = Field(default=15, gt=0, le=MAX_MINUTES)
    idempotency_retention_days: int = Field(default=7, ge=7, le=MAX_DAYS)
    expiry_batch_size: int = Field(default=5000, gt=0, le=MAX_BATCH_SIZE)
    # Fix the network clock of this process (RFC 3339 instant) for drills and tests.
    clock: str | None = None
    # Settlement: a cycle is closed and settled this long after its cut-off.
    settlement_grace_minutes: int = Field(default=30, ge=0, le=MAX_MINUTES)
    # Connections writing a cycle's statements side by side on PostgreSQL (each in the settlement's
    # snapshot); the default is this machine's cores, at most 8. 1 writes them one by one.
    settlement_jobs: int = Field(default_factory=default_jobs, ge=1, le=16)
    # Database connections a process keeps open for reuse; an API process (`serve`, `serve-api`) works
    # on at most this many requests at once, so a request never waits for a connection to be opened.
    db_pool_size: int = Field(default=20, ge=1, le=500)
    # Payments are due this many business days after the cycle date.
    settlement_lag_business_days: int = Field(default=1, ge=0, le=MAX_DAYS)
    # What partners sign as @authority (host[:port], see public_authority()): set it in production, or
    # each request's Host header is what its signature is checked against.
    public_authority: str | None = None
    redis_url: str | None = None  # shared rate limits across API processes
    rate_limit: str = DEFAULT_RATE_LIMIT  # per partner, a `limits` rate string
    max_body_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    # Webhook URLs resolving to loopback, private, link-local or reserved addresses are refused
    # (SSRF: a partner must not make the network call into its own infrastructure). An operator may
    # allow them for receivers on the network's own machine or LAN (the tests and the demo do).
    webhook_allow_private_targets: bool = False
    signing_key_file: Path | None = None
    pii_keys_file: Path | None = None
    pii_keys: str | None = None  # JSON, same shape as the key file
    # Logs: "text" for people at a terminal, "json" (one object per line) for log shippers.
    log_format: Literal["text", "json"] = "text"
    # Member programme (docs/programme.md): the tier ladder as JSON, activity status thresholds,
    # and how many days before points expire members are reminded (e.g. "30,7").
    tiers: TierConfig = Field(default_factory=TierConfig)
    activity_at_risk_days: int = Field(default=90, gt=0, le=MAX_DAYS)
    activity_dormant_days: int = Field(default=180, gt=0, le=MAX_DAYS)
    expiry_reminder_days: Annotated[tuple[int, ...], NoDecode] = (30, 7)
    programme_batch_size: int = Field(default=500, gt=0, le=MAX_BATCH_SIZE)
    # Dashboard (docs/dashboard.md): actions that need a second operator's approval, comma-separated
    # (any of member_adjustment, member_erasure, contract_change, settlement_paid, partner_suspension);
    # "none" turns maker-checker off. Session cookies are marked Secure unless this is false (plain
    # http on one machine: the demo).
    four_eyes_actions: Annotated[frozenset[str], NoDecode] = frozenset(
        {"member_adjustment", "member_erasure", "contract_change", "settlement_paid", "partner_suspension"})
    dashboard_secure_cookies: bool = True

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir(cls, value):
        # set but empty reads as the working directory, not the default ./pointsnet-data: a writing command
        # then made a new network there (until 2026-12-07), while the operator meant the real one
        if isinstance(value, str) and not value.strip():
            raise ValueError("is empty: name the data directory, or unset it for ./pointsnet-data")
        return value

    @field_validator("expiry_reminder_days", mode="before")
    @classmethod
    def _reminder_days(cls, value):
        if isinstance(value, str):
            value = [part for part in value.replace(" ", "").split(",") if part]
        days = tuple(sorted({int(day) for day in value}, reverse=True))
        if any(day <= 0 for day in days):
            raise ValueError("expiry reminder days must be positive whole days, e.g. 30,7")
        if any(day > MAX_DAYS for day in days):
            raise ValueError(f"expiry reminder days must be at most {MAX_DAYS} (100 years)")
        return days

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str | None) -> str | None:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        if not value:
            return value
        try:
            url = make_url(value)
            backend = url.get_backend_name()
        except (ArgumentError, ValueError):  # the message would hold the URL, and its password
            raise ValueError("not a database URL (sqlite:///PATH or postgresql://USER@HOST:PORT/NAME)") from None
        if backend not in ("sqlite", "postgresql", "postgres"):
            raise ValueError("only SQLite (sqlite:///PATH) and PostgreSQL (postgresql://…) databases are supported")
        if backend == "sqlite" and (not url.database or url.database in (":memory:", "file::memory:")
                                    or url.query.get("mode") == "memory"):
            # an in-memory database: each connection its own, empty, network (and no pool to size)
            raise ValueError("a SQLite URL names the database file (sqlite:///PATH), not an in-memory database")
        return value

    @field_validator("currency")
    @classmethod
    def _currency_code(cls, value: str) -> str:
        code = value.strip().upper()  # a partner's code is upper-cased before it is compared
        if not (len(code) == 3 and code.isascii() and code.isalpha()):
            raise ValueError("not an ISO 4217 currency code (three letters, e.g. CNY)")
        from shared.money import MoneyError, currency_exponent

        try:
            currency_exponent(code)  # points are per major unit: the places of its minor unit must be known
        except MoneyError:
            raise ValueError("not a current ISO 4217 currency with a minor unit (e.g. CNY, JPY, KWD; not XAU, "
                             "XXX or a withdrawn code)") from None
        return code

    @field_validator("default_region")
    @classmethod
    def _phone_region(cls, value: str) -> str:
        region = value.strip().upper()
        if region == DEFAULT_REGION:
            return region
        import phonenumbers

        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("not a region phone numbers are known for (an ISO 3166 code such as CN)")
        return region

    @field_validator("clock")
    @classmethod
    def _fixed_instant(cls, value: str | None) -> str | None:
        from shared.clock import parse_rfc3339

        if value:
            try:
                parse_rfc3339(value.strip())  # as the network clock reads it (shared/clock.py)
            except (ValueError, OverflowError):
                raise ValueError("not an RFC 3339 instant with its offset, e.g. 2026-12-01T00:00:00+08:00") from None
        return value

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        if value == DEFAULT_RATE_LIMIT:
            return value
        from limits import parse_many

        try:
            rates = parse_many(value)  # the gate reads the first (services/partner_api/middleware.py)
        except ValueError:
            raise ValueError("not a rate limit in `limits` syntax, e.g. 6000/minute") from None
        if len(rates) != 1:  # until 2026-12-07 only the first of several was enforced, silently
            raise ValueError("one rate, e.g. 6000/minute: several rates are not supported") from None
        if rates[0].amount < 1:
            raise ValueError("a rate of at least 1 request, e.g. 6000/minute") from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if not value:
            return value
        url = urlsplit(value)
        if url.scheme not in REDIS_SCHEMES:
            raise ValueError(f"not a Redis URL: the scheme is one of {', '.join(REDIS_SCHEMES)} "
                             "(e.g. redis://HOST:6379/0)")
        # the client's timeouts (the partner API gives it 0.5 s of each unless the URL sets its own)
        for name, values in parse_qs(url.query).items():
            if name in ("socket_timeout", "socket_connect_timeout") and not all(
                    _positive_seconds(given) for given in values):
                raise ValueError(f"not a Redis URL: its {name} is a number of seconds above 0 (e.g. 0.5)")
        if url.scheme == "redis+unix":
            if not url.path:
                raise ValueError("a redis+unix URL names its socket (redis+unix:///run/redis/redis.sock)")
            return value
        for address in url.netloc.rpartition("@")[2].split(","):  # the hosts of a cluster or sentinels
            where = urlsplit(f"//{address}")
            try:
                port = where.port
            except ValueError:
                port = 0
            if not where.hostname or port == 0:
                raise ValueError("not a Redis URL: each host is HOST or HOST:PORT (e.g. redis://HOST:6379/0)")
        if url.scheme == "redis+sentinel" and not url.path.strip("/"):
            raise ValueError("a redis+sentinel URL names the service after its hosts (redis+sentinel://HOST:26379/NAME)")
        if url.scheme in ("redis", "rediss"):
            from redis.connection import parse_url

            try:
                parse_url(value)  # redis-py's own reading of its options (?socket_timeout=…), no connection
            except ValueError:
                raise ValueError("not a Redis URL: an option in its query cannot be read") from None
        return value

    @field_validator("public_authority")
    @classmethod
    def _public_authority(cls, value: str | None) -> str | None:
        return None if value is None else public_authority(value)

    @field_validator("four_eyes_actions", mode="before")
    @classmethod
    def _four_eyes(cls, value):
        from shared.access.approvals import GUARDED_ACTIONS

        if isinstance(value, str):
            if value.strip().lower() == "none":
                value = []
            else:
                value = [p for p in value.replace(" ", "").split(",") if p]
                if not value:  # an empty variable (a template's unset default) must not switch the control off
                    raise ValueError("four-eyes actions are empty: name the actions, or say none to switch "
                                     "maker-checker off")
        unknown = set(value) - GUARDED_ACTIONS
        if unknown:
            raise ValueError(f"unknown four-eyes actions {sorted(unknown)}: choose from {sorted(GUARDED_ACTIONS)}")
        return frozenset(value)

    @field_validator("activity_dormant_days")
    @classmethod
    def _dormant_after_at_risk(cls, value, info):
        at_risk = info.data.get("activity_at_risk_days")
        if at_risk is not None and value <= at_risk:
            raise ValueError("activity_dormant_days must be greater than activity_at_risk_days")
        return value

    @field_validator("expiry_policy")
    @classmethod
    def _known_policy(cls, value: str) -> str:
        from shared.ledger.expiry_policy import validate

        return validate(value)

    def lot_expiry(self, earned_at):
        """When a lot earned at this instant expires under the network's policy."""
        from shared.ledger.expiry_policy import expires_at

        return expires_at(earned_at, self.expiry_policy, self.zone)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        # Files of the system's zoneinfo directory that are not one IANA zone: `localtime` is the host's
        # own setting (each host would have its own business day), `Factory` a placeholder, `right/…`
        # counts leap seconds (27 s off UTC), `posix/…` and `posixrules` are copies not every host has.
        if value in ("localtime", "Factory", "posixrules") or value.startswith(("right/", "posix/")):
            raise ValueError("not an IANA time zone name (such as Asia/Shanghai): the host's localtime, Factory, "
                             "right/… and posix/… are refused")
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, OSError) as exc:  # a KeyError: pydantic would not report it as invalid
            raise ValueError("not a known time zone (an IANA name such as Asia/Shanghai)") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'pointsnet.db').as_posix()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
