"""Key rotation in two phases: the new key is added inactive, then made active once every process
knows it, so that no process can miss a person another enrolled under a key it does not know and
enrol that person a second time (docs/security.md, "Personal-data key rotation").

Each "process" here is a Network of its own on the one test database, configured the way a process
of a rolling restart is: with POINTSNET_PII_KEYS as it was when the process started."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from shared import errors
from shared.config import Settings
from shared.keys import add_pii_key, new_keyring_json
from shared.members import enrolment
from shared.models import Member
from shared.network import Network
from tests.cli.inprocess import pointsnet
from tests.factories import make_partner, verify_ok
from tests.interleave import Pause, overlap
from tests.members.test_privacy import lookup


def _process(data_dir: Path, database_url: str, clock, keyring: dict) -> Network:
    """A process started with this keyring in POINTSNET_PII_KEYS."""
    return Network(Settings(data_dir=data_dir, pii_keys=json.dumps(keyring)), database_url=database_url, clock=clock)


def _rotate(data_dir: Path, database_url: str, keyring: dict, *args: str):
    """``pointsnet keys rotate ARGS`` run by the operator with this keyring in POINTSNET_PII_KEYS."""
    return pointsnet("keys", "rotate", *args, env={"POINTSNET_DATA_DIR": str(data_dir),
                                                   "POINTSNET_DATABASE_URL": database_url,
                                                   "POINTSNET_PII_KEYS": json.dumps(keyring)})


def _members(network: Network) -> int:
    return network.tx(lambda tx: tx.session.execute(select(func.count()).select_from(Member)).scalar_one(),
                      readonly=True)


def _same_person_twice(first: Network, second: Network, partner: str, phone: str, email: str) -> None:
    """``first`` enrols the person, ``second`` (another process) enrols the same person for the same
    partner: it must find the member, never create another."""
    enrolled = first.enrol(partner, phone=phone, email=email)
    assert enrolled["created"]
    again = second.enrol(partner, phone=phone, email=email)
    assert again == {"member_id": enrolled["member_id"], "created": False, "linked": True}
    assert lookup(second, phone=phone) == lookup(first, phone=phone) == enrolled["member_id"]


def test_a_rolling_restart_through_both_phases_never_enrols_one_person_twice(tmp_path, database_url, clock):
    data_dir = tmp_path / "data"
    initial = new_keyring_json()
    old_key = initial["active"]
    running = _process(data_dir, database_url, clock, initial)
    shop = make_partner(running)
    opened = [running]
    try:
        # phase 1, staged for the operator: the new key is in the keyring, not active
        staged = _rotate(data_dir, database_url, initial)
        assert staged.returncode == 0, staged.stderr
        report = json.loads(staged.stdout)
        new_key = report["added_key"]
        phase_1 = json.loads(Path(report["next_keyring_file"]).read_text())

        # the rolling restart: one process already has the staged keyring, another not yet
        restarted = _process(data_dir, database_url, clock, phase_1)
        opened.append(restarted)
        _same_person_twice(restarted, running, shop, "+8613811110001", "a@example.com")
        _same_person_twice(running, restarted, shop, "+8613811110002", "b@example.com")
        with pytest.raises(errors.ConsentRequired):  # another partner: found, so consent is needed
            running.enrol(make_partner(running, "Other"), phone="+8613811110001")
        assert phase_1["active"] == old_key and set(phase_1["keys"]) == {old_key, new_key}
        assert f"--activate {new_key}" in staged.stderr

        # phase 2, staged once every process runs phase 1: the same keys, the new one active
        activated = _rotate(data_dir, database_url, phase_1, "--activate", new_key)
        assert activated.returncode == 0, activated.stderr
        phase_2 = json.loads(Path(json.loads(activated.stdout)["next_keyring_file"]).read_text())
        assert phase_2 == {**phase_1, "active": new_key}
        assert "--reencrypt-only" in activated.stderr

        # the second rolling restart: processes on phase 1 and on phase 2 side by side
        on_phase_1 = _process(data_dir, database_url, clock, phase_1)
        on_phase_2 = _process(data_dir, database_url, clock, phase_2)
        opened += [on_phase_1, on_phase_2]
        _same_person_twice(on_phase_2, on_phase_1, shop, "+8613811110003", "c@example.com")
        _same_person_twice(on_phase_1, on_phase_2, shop, "+8613811110004", "d@example.com")

        # every process on phase 2: re-encryption finishes, nothing collides, nobody is there twice
        resealed = _rotate(data_dir, database_url, phase_2, "--reencrypt-only", "--batch-size", "2")
        assert resealed.returncode == 0, resealed.stderr
        done = json.loads(resealed.stdout)
        assert done["active_key"] == new_key and done["left"] == 0 and done["old_keys"] == [old_key]
        assert _members(on_phase_2) == 4
        for n in range(1, 5):
            assert lookup(on_phase_2, phone=f"+861381111000{n}") is not None
        verify_ok(on_phase_2)
    finally:
        for network in opened:
            network.close()


def test_activating_a_key_the_keyring_does_not_hold_is_one_line_and_changes_nothing(tmp_path, database_url):
    data_dir = tmp_path / "data"
    initial = new_keyring_json()
    unknown = _rotate(data_dir, database_url, initial, "--activate", "k00000000")
    assert unknown.returncode != 0 and "Traceback" not in unknown.stderr
    assert unknown.stderr.strip().count("\n") == 0 and "no personal-data key k00000000" in unknown.stderr
    assert not (data_dir / "keys" / "pii-keys.next.json").exists()
    active = _rotate(data_dir, database_url, initial, "--activate", initial["active"])
    assert active.returncode != 0 and active.stderr.strip().count("\n") == 0
    assert "already the active" in active.stderr
    both = _rotate(data_dir, database_url, initial, "--activate", initial["active"], "--reencrypt-only")
    assert both.returncode != 0 and both.stderr.strip().count("\n") == 0 and "--reencrypt-only" in both.stderr


def test_two_processes_with_different_active_keys_enrolling_one_person_at_once_make_one_member(
        tmp_path, database_url, clock, monkeypatch):
    """Phase 2 of a rolling restart: one process seals under the old key, another under the new, both
    know both. Both enrol the same person at the same moment: the first pauses after its lookup missed,
    its transaction open; the second must wait for it (PostgreSQL: the advisory locks on the contact's
    index values under every known key; SQLite: the one writer) and then find its member."""
    data_dir = tmp_path / "data"
    initial = new_keyring_json()
    setup = Network(Settings(data_dir=data_dir), database_url=database_url, clock=clock)
    shop = make_partner(setup)
    setup.close()
    with_new = {**initial, "keys": {**initial["keys"], **new_keyring_json()["keys"]}}
    new_key = next(k for k in with_new["keys"] if k != initial["active"])
    old_active = _process(data_dir, database_url, clock, with_new)
    new_active = _process(data_dir, database_url, clock, {**with_new, "active": new_key})
    try:
        pause = Pause().after(monkeypatch, enrolment, "_find_by_contact")
        both = overlap(lambda: old_active.enrol(shop, phone="+8613922220001"),
                       lambda: new_active.enrol(shop, phone="+8613922220001"), pause)
        assert not isinstance(both.first, Exception), both.first
        assert not isinstance(both.second, Exception), both.second
        assert both.second_waited
        assert both.first["created"] and not both.second["created"]
        assert both.second["member_id"] == both.first["member_id"]
        assert _members(old_active) == 1
    finally:
        old_active.close()
        new_active.close()


def test_a_process_notices_a_key_file_change_that_lands_while_it_reads_the_file(settings, database_url, clock,
                                                                                monkeypatch):
    """The running network re-reads the key file when it changes. A change written just after the
    process read the file (before it noted which file it read) must still be picked up on the next
    use: a process left on the keyring before phase 1 would miss members once the new key is active."""
    import shared.network
    from shared.keys import load_pii_keyring

    old, _ = load_pii_keyring(settings)  # the key file as the process finds it at start
    network = Network(settings, database_url=database_url, clock=clock)
    try:
        added: list[str] = []
        original = shared.network.load_pii_keyring

        def read_then_changed(s, **options):
            loaded = original(s, **options)
            if not added:
                added.append(add_pii_key(s))  # the rotation's phase 1 lands right after this read
            return loaded

        monkeypatch.setattr(shared.network, "load_pii_keyring", read_then_changed)
        assert set(network.keyring.keys) == {old}  # what the file held when read
        monkeypatch.setattr(shared.network, "load_pii_keyring", original)
        assert set(network.keyring.keys) == {old, added[0]} and network.keyring.active.id == old
    finally:
        network.close()
