"""One handle on a running network: its settings, database, clock and keys.

The facade methods each run one unit of work through the transaction runner; the
services (API endpoints, jobs, CLI) use them or call the ledger functions inside
their own ``run_in_transaction``.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime
from functools import cached_property
from typing import Any, Callable

from shared.clock import Clock, clock_from_settings
from shared.config import Settings, get_settings
from shared.db.database import SQLITE_BUSY_TIMEOUT_MS, Database, Tx, sqlite_file
from shared.errors import PointsnetError
from shared.jobs.batches import Batch
from shared.keys import load_pii_keyring, load_signing_key, pii_key_file, signing_key_file
from shared.ledger import bonus, expiry, holds, idempotency, queries
from shared.ledger.cycles import check_cycle_settings, pin_cycle_settings
from shared.ledger.events import Event
from shared.ledger.posting import post_events
from shared.members import enrolment
from shared.members.privacy import Keyring
from shared.observability import SETTLEMENT_DURATION
from shared.partners import contracts
from shared.partners.contracts import ContractTerms

log = logging.getLogger("pointsnet.jobs")
ERASED_PAGES_WAIT_MS = 2000  # how long an erasure's WAL checkpoint waits for readers, holding the write lock


class Network:
    def __init__(self, settings: Settings | None = None, *, database_url: str | None = None,
                 clock: Clock | None = None, pool_size: int | None = None, create_keys: bool = True):
        """``create_keys``: make the keys a first start makes when they are missing; False for a process
        that only reads (a missing key is then a configuration error: shared/keys.py)."""
        self.settings = settings or get_settings()
        self.create_keys = create_keys
        self.clock = clock or clock_from_settings(self.settings.clock)
        self.db = Database(self.settings, url=database_url, clock=self.clock,
                           pool_size=pool_size or self.settings.db_pool_size)

    @property
    def keyring(self) -> Keyring:
        """The personal-data keyring, read again whenever its key file changes: a key added by
        ``pointsnet keys rotate`` reaches every running process before re-encryption starts."""
        if "_keyring_fixed" in self.__dict__:
            return self.__dict__["_keyring_fixed"]
        stamp = self._key_file_stamp()
        cached = self.__dict__.get("_keyring")
        if cached is None or cached[0] != stamp:
            # noted with the stamp taken BEFORE reading: a change landing while the file is read is
            # read again on the next use, never taken as already read (a rotation's phase 1 missed)
            cached = (stamp, Keyring(*load_pii_keyring(self.settings, create=self.create_keys,
                                                       in_use=lambda: self._keys_in_use("pii"))))
            self.__dict__["_keyring"] = cached
        return cached[1]

    @keyring.setter
    def keyring(self, keyring: Keyring) -> None:
        """Use this keyring, whatever the configuration says (a second handle on the same network)."""
        self.__dict__["_keyring_fixed"] = keyring

    def _key_file_stamp(self) -> tuple[int, int] | None:
        path = pii_key_file(self.settings)
        try:
            status = path.stat() if path is not None else None
        except (FileNotFoundError, NotADirectoryError):  # not there yet (or a file where the data dir belongs:
            return None  # loading the keyring then says so in one line)
        return (status.st_ino, status.st_mtime_ns) if status else None

    @cached_property
    def signing_key(self):
        return load_signing_key(self.settings, create=self.create_keys,
                                in_use=lambda: self._keys_in_use("signing"))

    def _keys_in_use(self, key: str) -> str | None:
        """What this network's database holds that its keys made, asked before a first start makes
        ``key`` ("signing" or "pii"): signed checkpoints (the signing key), members whose personal data is
        sealed (``v1.<key id>.…``) or indexed (``<key id>:…``) under the keyring. What the other key made
        counts too while this host lacks that key as well: a host without the network's keys at all gets
        neither, so it writes no key before refusing. Only a brand-new network gets new keys."""
        from sqlalchemy import inspect, or_, select

        from shared.members.rotation import SEALED
        from shared.models.members import Member
        from shared.models.transparency import Checkpoint

        if not inspect(self.db.engine).has_table(Member.__tablename__):
            return None  # no schema yet: nothing was made with a key
        other = "pii" if key == "signing" else "signing"
        sealed = or_(*(column.is_not(None) for column in SEALED))
        queries = {"signing": ("signed checkpoints", select(Checkpoint.id).limit(1)),
                   "pii": ("sealed members", select(Member.id).where(sealed).limit(1))}
        asked = [key, other] if self._key_missing(other) else [key]

        def look(tx: Tx) -> str | None:
            found = [queries[which][0] for which in asked if tx.session.scalar(queries[which][1]) is not None]
            return " and ".join(found) or None

        return self.tx(look, readonly=True)

    def _key_missing(self, key: str) -> bool:
        """``key`` ("signing" or "pii") is neither configured, nor given to this handle, nor in this host's
        data directory."""
        if key == "signing":
            return not self.settings.signing_key_file and not signing_key_file(self.settings).exists()
        if "_keyring_fixed" in self.__dict__:
            return False
        path = pii_key_file(self.settings)
        return path is not None and not self.settings.pii_keys_file and not path.exists()

    def check_keys(self) -> None:
        """Load (on a brand-new network, make) the keys, and stop a writer at start if they are not this
        network's (shared/key_match.py): KeyConfigurationError naming what does not match."""
        from shared.key_match import keyring_mismatch, signing_key_mismatch
        from shared.keys import KeyConfigurationError

        self.finish_interrupted_rotation()
        keyring, public_key = self.keyring, self.signing_key.public_key()

        def look(tx: Tx) -> list[str]:
            found = [keyring_mismatch(tx, keyring), signing_key_mismatch(tx, public_key, tx.now)]
            return [reason for reason in found if reason]

        reasons = self.tx(look, readonly=True)
        if reasons:
            raise KeyConfigurationError(f"{'; '.join(reasons)}: give this host the network's keys "
                                        "(POINTSNET_DATA_DIR, or the key variables), not new ones")

    def finish_interrupted_rotation(self) -> str | None:
        """A signing-key rotation stopped after it recorded the new key and before the key file held it:
        finish it (shared/keys.py) and sign with the current key from now on; returns its id, or None."""
        from shared.keys import finish_interrupted_rotation
        from shared.signing_keys import current_key_ids

        finished = finish_interrupted_rotation(self.settings,
                                               lambda: self.tx(lambda tx: current_key_ids(tx), readonly=True))
        if finished:
            self.__dict__.pop("signing_key", None)
            log.warning("finished an interrupted rotation of the network's signing key: %s is now in %s",
                        finished, signing_key_file(self.settings))
        return finished

    def tx(self, fn, **kwargs):
        return self.db.run_in_transaction(fn, **kwargs)

    # -- partners and members --------------------------------------------------------
    def create_partner(self, name: str, terms: ContractTerms | None = None) -> dict:
        return self.tx(lambda tx: contracts.create_partner(tx, name, terms))

    def enrol(self, partner_id: str, **fields: Any) -> dict:
        keyring = self.keyring
        return self.tx(lambda tx: enrolment.enrol(tx, keyring, partner_id, **fields))

    def link(self, partner_id: str, link_token: str, customer_ref: str | None = None) -> dict:
        """Link an existing member to this partner with the member's consent token."""
        return self.enrol(partner_id, link_token=link_token, customer_ref=customer_ref)

    def mint_link_token(self, partner_id: str, member_id: str) -> dict:
        return self.tx(lambda tx: enrolment.mint_link_token(tx, partner_id, member_id))

    def rotate_personal_data(self, batch_size: int = 500) -> int:
        """Re-seal every member's personal data under the active key, one short transaction per batch."""
        from shared.members.rotation import rotate_batch

        # self.keyring is read per batch: it follows the key file if it changes meanwhile
        return self.until_done(lambda tx: rotate_batch(tx, self.keyring, batch_size))

    def erase_member(self, member_id: str, *, reason: str | None = None) -> dict:
        """Erase the member's personal data and forfeit its points (see shared/members/erasure.py)."""
        from shared.members.erasure import erase_member

        keyring = self.keyring

        def unit(tx):
            record = erase_member(tx, member_id, keyring=keyring, reason=reason)
            self.expect_erased_pages()  # its writes hold the write lock: no checkpoint can lower the flag now
            return record

        record = self.tx(unit)
        self.forget_erased_pages()
        return record

    def expect_erased_pages(self) -> None:
        """In an erasure's unit, after its writes and before it commits: raise the flag that has the job
        runner empty the SQLite WAL (``retry_forgetting_erased_pages``), so that a process killed between
        the commit and its own checkpoint (``forget_erased_pages``, which lowers the flag) leaves the job to
        finish it. Raised while the unit's writes hold the write lock, no checkpoint (which waits for the
        writer) can lower it before the erasure commits. An erasure rolled back after it leaves it raised:
        the job's next checkpoint lowers it."""
        flag = self._erased_pages_flag()
        if flag is not None:
            flag.touch()
            descriptor = os.open(flag.parent, os.O_RDONLY)
            try:
                os.fsync(descriptor)  # the flag's name on disk before the erasure's commit
            finally:
                os.close(descriptor)

    def forget_erased_pages(self) -> bool:
        """After an erasure commits: on SQLite, old page images with the erased ciphertexts stay in the WAL
        until a checkpoint copies the WAL into the database and empties it. The checkpoint holds the write
        lock while it waits for readers still on an older snapshot (a ``verify``, a report): it waits at
        most ERASED_PAGES_WAIT_MS, never the minute a writer would, so no write of the network stalls
        behind a long read. Returns whether the WAL was emptied; if not, a flag file beside the database
        has the job runner try again each minute (``retry_forgetting_erased_pages``) until it is. PostgreSQL
        needs nothing here."""
        if self.db.dialect != "sqlite":
            return True
        # it takes its turn like any writer, so the process's writers queue behind it rather than collide
        with self.db.write_turn():
            raw = self.db.engine.raw_connection()
            try:
                connection = raw.driver_connection
                connection.execute(f"PRAGMA busy_timeout={ERASED_PAGES_WAIT_MS}")
                try:
                    busy, log_frames, copied = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                finally:
                    connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            finally:
                raw.close()
        emptied = busy == 0 and log_frames in (0, copied)
        flag = self._erased_pages_flag()
        if flag is not None:
            if emptied:
                flag.unlink(missing_ok=True)
            else:
                flag.touch()
                log.warning("erased members' old page images stay in the SQLite WAL while a reader is open: "
                            "the job runner empties it at its next chance (each minute)")
        return emptied

    def retry_forgetting_erased_pages(self) -> bool | None:
        """The job runner's retry of ``forget_erased_pages`` after one that could not empty the WAL:
        None when nothing is waiting (no flag), else whether it is emptied now."""
        flag = self._erased_pages_flag()
        if flag is None or not flag.exists():
            return None
        return self.forget_erased_pages()

    def _erased_pages_flag(self):
        """The file that says an erasure's old page images may still be in the WAL (beside a SQLite
        database file; None for PostgreSQL and in-memory databases)."""
        path = sqlite_file(self.db.url)
        return path.with_name(f"{path.name}.erased-pages") if path is not None else None

    # -- ledger ----------------------------------------------------------------------
    def post(self, partner_id: str, events: list[Event]) -> list[dict | PointsnetError]:
        return self.tx(lambda tx: post_events(tx, partner_id, events))

    def _one(self, partner_id: str, event: Event, idempotency_key: str | None = None) -> dict:
        def unit(tx: Tx) -> dict:
            def operation() -> dict:
                [outcome] = post_events(tx, partner_id, [event])
                if isinstance(outcome, PointsnetError):
                    raise outcome
                return outcome
            if idempotency_key is None:
                return operation()
            return idempotency.run_once(tx, partner_id, idempotency_key, event.request()
                                        | {"reference": event.reference}, operation)[1]
        return self.tx(unit)

    def earn(self, partner_id: str, member_id: str, reference: str, *, points: int | None = None,
             amount: int | None = None, currency: str | None = None, occurred_at: datetime | None = None,
             idempotency_key: str | None = None) -> dict:
        return self._one(partner_id, Event("earn", reference, member_id, points, amount, currency, occurred_at),
                         idempotency_key)

    def activity(self, partner_id: str, member_id: str, activity: str, reference: str, *,
                 occurred_at: datetime | None = None, idempotency_key: str | None = None) -> dict:
        """Award the points of one of the partner's activities (see shared/programme/activities.py)."""
        return self._one(partner_id, Event("activity", reference, member_id, occurred_at=occurred_at,
                                           activity=activity), idempotency_key)

    def burn(self, partner_id: str, member_id: str, reference: str, points: int, *,
             occurred_at: datetime | None = None, idempotency_key: str | None = None) -> dict:
        return self._one(partner_id, Event("burn", reference, member_id, points, occurred_at=occurred_at),
                         idempotency_key)

    def hold(self, partner_id: str, member_id: str, reference: str, points: int, **kw: Any) -> dict:
        return self._one(partner_id, Event("hold", reference, member_id, points), kw.get("idempotency_key"))

    def capture(self, partner_id: str, hold_id: str, points: int | None = None, *, reference: str | None = None,
                idempotency_key: str | None = None) -> dict:
        return self._one(partner_id, Event("capture", reference, points=points, hold_id=hold_id), idempotency_key)

    def void(self, partner_id: str, hold_id: str, *, reference: str | None = None,
             idempotency_key: str | None = None) -> dict:
        return self._one(partner_id, Event("void", reference, hold_id=hold_id), idempotency_key)

    def reverse(self, partner_id: str, reference: str, original_reference: str, points: int | None = None, *,
                idempotency_key: str | None = None) -> dict:
        return self._one(partner_id, Event("reversal", reference, points=points,
                                           original_reference=original_reference), idempotency_key)

    def grant_bonus(self, member_id: str, points: int, *, reason: str, partner_id: str | None = None,
                    reference: str | None = None) -> dict:
        return self.tx(lambda tx: bonus.grant_bonus(tx, member_id, points, reason=reason, partner_id=partner_id,
                                                    reference=reference))

    def balance(self, member_id: str) -> dict:
        return self.tx(lambda tx: queries.member_balance(tx, member_id, with_lots=True), readonly=True)

    # -- jobs ------------------------------------------------------------------------
    def until_done(self, batch: Callable[[Tx], int | Batch], on_batch: Callable[[int], None] | None = None) -> int:
        """Run ``batch`` in one bounded transaction after another until one does nothing; returns the
        sum of what they did (``on_batch`` hears each batch's count, e.g. for a progress bar).

        A batch that returns a ``Batch`` and did nothing though it read due work (done meanwhile by
        another unit: shared/jobs/batches.py) does not end the run; the next batch reads what is due
        now. The run ends when a batch reads nothing due, or reads only work that batches since the
        last one that did something have read and left (nothing else is taking that work: never a
        loop, even when ties in the due order make them read it in alternating subsets)."""
        total, left = 0, set()
        while True:
            outcome = self.tx(batch)
            done, read = (outcome.done, outcome.read) if isinstance(outcome, Batch) else (outcome, None)
            if done:
                total += done
                left.clear()
                if on_batch:
                    on_batch(done)
                continue
            if not read or read <= left:
                if read:
                    log.warning("job batches read the same due work (%d ids) again and did none of it", len(left))
                return total
            left |= read

    def expire_lots(self, on_batch: Callable[[int], None] | None = None) -> int:
        """Expire every due lot, in bounded transactions; returns the points expired."""
        return self.until_done(lambda tx: expiry.expire_next(tx, self.settings.expiry_batch_size), on_batch)

    def expire_holds(self) -> int:
        return self.until_done(lambda tx: holds.expire_holds_next(tx, self.settings.expiry_batch_size))

    def prune_idempotency(self) -> int:
        return self.tx(idempotency.prune)

    # -- tamper-evident ledger (shared/transparency) --------------------------------
    def seal(self, *, search_all: bool = True) -> int:
        """Seal every committed entry into the tree, one bounded transaction per batch (without
        ``search_all``: those in the recent id range; see ``seal_batch``)."""
        from shared.transparency.store import BATCH, seal_batch

        total = 0
        while True:
            sealed = self.tx(lambda tx: seal_batch(tx, search_all=search_all))
            total += sealed
            if sealed < BATCH:
                return total

    def checkpoint(self) -> dict:
        """Seal what is left and sign a checkpoint of the tree (the job runs this every minute)."""
        from shared.transparency.checkpoints import checkpoint_json, make_checkpoint

        self.seal()
        key = self.signing_key
        return self.tx(lambda tx: checkpoint_json(make_checkpoint(tx, key)))

    # -- clearing --------------------------------------------------------------------
    def settle(self, cycle, *, ignore_grace: bool = True) -> dict:
        from shared.settlement.runs import prepare_cycle, settle_cycle

        key = self.signing_key
        started = time.perf_counter()
        self.tx(lambda tx: prepare_cycle(tx, cycle, key, ignore_grace=ignore_grace))
        result = self.tx(lambda tx: settle_cycle(tx, cycle, key, ignore_grace=ignore_grace))
        if not result["already_settled"]:
            SETTLEMENT_DURATION.observe(time.perf_counter() - started)
        return result

    def settle_due(self) -> list[dict]:
        """Settle every cycle past its cut-off and grace that is not settled yet, oldest first."""
        from shared.settlement.runs import due_cycles

        return [self.settle(cycle) for cycle in self.tx(due_cycles, readonly=True)]

    def pin_cycle_settings(self) -> None:
        """At a process's start: refuse (a configuration error) a time zone or cut-off other than the
        one the network's cycles are cut by; on a new network, record them. Also keep the largest
        occurred_at window the network has posted under (campaign reports read that far)."""
        from shared.reports.campaigns import record_occurred_window

        self.tx(lambda tx: (pin_cycle_settings(tx), record_occurred_window(tx)))

    def check_cycle_settings(self) -> None:
        """At the start of a process that only reads: the same refusal, nothing written (a read-only
        replica), a missing record left to the next writer."""
        self.tx(check_cycle_settings, readonly=True)

    def close(self) -> None:
        self.db.dispose()
