"""`pointsnet verify` never parses a phone number, so it must not pay for importing phonenumbers
(16-25 ms, its metadata): the library is imported where a phone number is parsed, not with
shared.members.privacy (which every network handle imports, for its keyring)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shared.errors import InvalidContact
from shared.members.privacy import normalise_phone

ROOT = Path(__file__).resolve().parents[2]


def loaded_after(script: str) -> bool:
    done = subprocess.run([sys.executable, "-c", script + "\nimport sys; print('phonenumbers' in sys.modules)"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1] == "True"


def test_the_verify_command_and_the_network_do_not_import_phonenumbers():
    assert not loaded_after("import services.cli.ledger, shared.network, shared.ledger.verify, "
                            "shared.members.privacy, shared.members.enrolment")


def test_running_verify_does_not_import_phonenumbers(tmp_path):
    environment = (f"import os; os.environ['POINTSNET_DATA_DIR'] = {str(tmp_path / 'data')!r}\n"
                   "os.environ.pop('POINTSNET_DATABASE_URL', None)\n")
    made = subprocess.run([sys.executable, "-c", environment + "import sys; sys.argv = ['pointsnet', 'db', 'upgrade']\n"
                           "from services.cli import main\nmain()"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert made.returncode == 0, made.stderr  # verify only reads: the network's database must be there
    script = (environment +
              "from shared.keys import load_signing_key; from shared.config import get_settings\n"
              "load_signing_key(get_settings())\n"
              "import sys; sys.argv = ['pointsnet', 'verify', '--json']\n"
              "from services.cli import main\n"
              "try:\n    main()\nexcept SystemExit as exit:\n    assert exit.code == 0, exit.code")
    assert not loaded_after(script)


def test_phone_numbers_are_still_parsed():
    assert normalise_phone("139 1234 5678", "CN") == "+8613912345678"
    assert normalise_phone("+44 20 7946 0018", "CN") == "+442079460018"
    with pytest.raises(InvalidContact, match="cannot be read"):
        normalise_phone("not a number", "CN")
    with pytest.raises(InvalidContact, match="not a valid number"):
        normalise_phone("+86 123", "CN")
    assert loaded_after("from shared.members.privacy import normalise_phone; normalise_phone('13912345678', 'CN')")
