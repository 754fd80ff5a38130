"""`pointsnet reconcile` and the dashboard's "Verify the run's files" recompute the cycle in a temporary
directory. Where none can be made (a systemd unit with ProtectSystem=strict and no PrivateTmp=true
leaves /tmp read-only; a full disk) the check says so — one line on the command line, a 503 page
naming the problem on the dashboard — instead of a traceback or a 500."""

from __future__ import annotations

import errno
import tempfile

import pytest

from tests.cli.inprocess import pointsnet as run_pointsnet
from tests.dashboard import conftest as dashboard
from tests.dashboard import test_ledger_settlement as ledger_settlement
from tests.dashboard.conftest import BASE, post_form
from tests.dashboard.test_ledger_settlement import CYCLE

# the dashboard's fixtures, and the settled cycle of its Settlement tests
client_as, partners, quick_password_hashing = dashboard.client_as, dashboard.partners, dashboard.quick_password_hashing
settings, staff, settled = dashboard.settings, dashboard.staff, ledger_settlement.settled

FAILURES = {
    "read-only": OSError(errno.EROFS, "Read-only file system", "/tmp/pointsnet-reconcile-x1"),
    "none usable": FileNotFoundError(errno.ENOENT, "No usable temporary directory found in ['/tmp', '/var/tmp']"),
}


@pytest.fixture(params=sorted(FAILURES))
def no_scratch(request, monkeypatch):
    failure = FAILURES[request.param]

    def mkdtemp(*args, **kwargs):
        raise failure

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    return failure


def test_reconcile_without_a_temporary_directory_is_one_line(network, clock, database_url, settled, no_scratch):
    directory = network.settings.data_dir / "settlements" / CYCLE.isoformat()
    done = run_pointsnet("reconcile", str(directory), env={
        "POINTSNET_DATA_DIR": str(network.settings.data_dir), "POINTSNET_DATABASE_URL": database_url,
        "POINTSNET_CLOCK": clock.now().isoformat().replace("+00:00", "Z")})
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-600:]
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: cannot make a temporary directory to recompute the cycle in"), line
    assert no_scratch.strerror in line and "PrivateTmp=true" in line, line


def test_the_verify_page_without_a_temporary_directory_names_the_problem(client_as, network, settled, no_scratch):
    client = client_as("finance")
    client._transport.raise_server_exceptions = False  # what a browser gets
    answer = post_form(client, f"{BASE}/settlement/{CYCLE}/verify", page=f"{BASE}/settlement/{CYCLE}")
    assert answer.status_code == 503, answer.status_code
    assert "scratch_unavailable" in answer.text and "writable temporary directory" in answer.text
    assert "internal_error" not in answer.text
