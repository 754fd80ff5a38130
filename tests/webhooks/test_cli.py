"""The operator's webhook commands on the embedded database (run in this process: tests/cli/inprocess.py)."""

from __future__ import annotations

import json

import pytest

from shared.config import get_settings
from shared.network import Network
from tests.cli.inprocess import environment, pointsnet as run_pointsnet
from shared.webhooks.schedule import MIN_TRIES
from tests.conftest import PG_URL
from tests.cli.test_commands import pointsnet

pytestmark = pytest.mark.skipif(bool(PG_URL), reason="drives the embedded SQLite database")


T0 = "2026-11-20T02:00:00Z"  # every command runs on the network's fixed clock


def run(tmp_path, *args, clock: str = T0, check=True):
    env = {"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_CLOCK": clock, "COLUMNS": "200",
           "POINTSNET_WEBHOOK_ALLOW_PRIVATE_TARGETS": "1", "POINTSNET_DATABASE_URL": None}
    done = run_pointsnet(*args, env=env)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def test_set_rotate_deliver_dead_letter_and_replay(tmp_path, receiver):
    assert pointsnet(tmp_path, "db", "upgrade").returncode == 0
    partner = json.loads(run(tmp_path, "partners", "add", "Shop").stdout)["partner_id"]
    refused = run(tmp_path, "webhooks", "set", partner, "--url", "http://example.com/hooks", check=False)
    assert refused.returncode == 2 and "https" in refused.stderr
    endpoint = json.loads(run(tmp_path, "webhooks", "set", partner, "--url", receiver.url("/hooks")).stdout)
    assert endpoint["endpoint_id"].startswith("whe_") and endpoint["secret"].startswith("whsec_")
    rotated = json.loads(run(tmp_path, "webhooks", "rotate-secret", partner).stdout)
    assert rotated["secret"] != endpoint["secret"]
    assert rotated["previous_secret_expires_at"] == "2026-11-21T02:00:00+00:00"
    assert "secret" not in json.loads(run(tmp_path, "webhooks", "show", partner).stdout)

    with environment({"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_CLOCK": T0,
                      "POINTSNET_DATABASE_URL": None}):
        n = Network(get_settings())
        m = n.enrol(partner, phone='+8613812345678')['member_id']
        n.earn(partner, m, 'e1', points=50)
        n.close()

    receiver.always = 503
    first = json.loads(run(tmp_path, "webhooks", "deliver", clock="2026-11-20T02:00:01Z").stdout)
    assert first["retrying"] == 1
    [pending] = json.loads(run(tmp_path, "webhooks", "deliveries", "--json").stdout)
    assert pending["status"] == "pending" and pending["last_status_code"] == 503
    assert json.loads(run(tmp_path, "webhooks", "deliveries", "--dead", "--json").stdout) == []
    # tried on schedule; past the three-day window (and the tries it gives) the next failure is the last
    while True:
        due = pending["next_attempt_at"].replace("+00:00", "Z")
        if json.loads(run(tmp_path, "webhooks", "deliver", clock=due).stdout)["dead"] == 1:
            break
        [pending] = json.loads(run(tmp_path, "webhooks", "deliveries", "--json").stdout)
        assert pending["status"] == "pending" and due < "2026-11-24T02:00:00Z"
    [dead] = json.loads(run(tmp_path, "webhooks", "deliveries", "--dead", "--json").stdout)
    assert dead["delivery_id"] == pending["delivery_id"] and dead["attempts"] >= MIN_TRIES
    assert dead["dead_at"] >= "2026-11-23T02:00:01+00:00"
    assert pending["delivery_id"] in run(tmp_path, "webhooks", "deliveries", "--dead").stdout

    receiver.always = None
    replayed = json.loads(run(tmp_path, "webhooks", "replay", dead["delivery_id"],
                              clock="2026-11-25T00:00:00Z").stdout)
    assert replayed["status"] == "delivered" and replayed["previous_status"] == "dead"
    assert [a["status_code"] for a in replayed["attempt_log"]] == [503] * dead["attempts"] + [200]
    assert len(receiver.requests) == dead["attempts"] + 1
    assert {r["headers"]["webhook-id"] for r in receiver.requests} == {dead["delivery_id"]}
    unknown = run(tmp_path, "webhooks", "replay", "msg_nope", check=False)
    assert unknown.returncode == 2 and "msg_nope" in unknown.stderr
    run(tmp_path, "webhooks", "disable", partner)

    # each change is audited as the dashboard's are, by the command line (until 2026-12-07 none was)
    with environment({"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_CLOCK": T0,
                      "POINTSNET_DATABASE_URL": None}):
        from shared.access import audit

        n = Network(get_settings())
        logged = n.tx(lambda tx: audit.page(tx, limit=100)[0], readonly=True)
        n.close()
    webhooks = [(e["action"], e["user"], e["target"]) for e in reversed(logged) if e["action"].startswith("webhook.")]
    assert webhooks == [("webhook.set", "cli", partner), ("webhook.secret_rotated", "cli", partner),
                        ("webhook.replayed", "cli", partner), ("webhook.disabled", "cli", partner)]
    assert not any("whsec_" in json.dumps(e, default=str) for e in logged)  # never the secret
    [replay_entry] = [e for e in logged if e["action"] == "webhook.replayed"]
    assert replay_entry["detail"] == {"delivery_id": dead["delivery_id"], "previous_status": "dead"}


def _partner(tmp_path) -> str:
    assert pointsnet(tmp_path, "db", "upgrade").returncode == 0
    return json.loads(run(tmp_path, "partners", "add", "Shop").stdout)["partner_id"]


@pytest.mark.parametrize("url", ["https://[::1", "https://[fe80::1/hook", "https://example.org:99999/hook",
                                 "https://example.org:0/hook",
                                 # a host no resolver knows, percent-encoded by httpx (accepted until 2026-12-07)
                                 "https://exa mple.org/hook", "https://exa%20mple.org/hook"])
def test_webhooks_set_refuses_a_bad_url_in_one_line(tmp_path, url):
    """docs/operations.md: every mistake on the command line is one line on stderr and a non-zero exit."""
    partner = _partner(tmp_path)
    done = run(tmp_path, "webhooks", "set", partner, "--url", url, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-400:]
    assert len(done.stderr.strip().splitlines()) == 1 and "error" in done.stderr, done.stderr
    assert json.loads(run(tmp_path, "webhooks", "deliveries", "--json").stdout) == []
    assert run(tmp_path, "webhooks", "show", partner, check=False).returncode == 2  # nothing registered


def test_webhooks_set_prints_the_secret_when_it_makes_it_and_never_an_existing_one(tmp_path):
    partner = _partner(tmp_path)
    created = json.loads(run(tmp_path, "webhooks", "set", partner, "--url", "http://127.0.0.1:9/hooks").stdout)
    secret = created["secret"]
    assert secret.startswith("whsec_")
    changed = run(tmp_path, "webhooks", "set", partner, "--url", "http://127.0.0.1:10/hooks")
    assert secret not in changed.stdout and "whsec_" not in changed.stdout
    assert json.loads(changed.stdout)["url"] == "http://127.0.0.1:10/hooks"
    run(tmp_path, "webhooks", "disable", partner)
    enabled = run(tmp_path, "webhooks", "set", partner, "--url", "http://127.0.0.1:10/hooks")  # enabled again
    assert "whsec_" not in enabled.stdout and json.loads(enabled.stdout)["status"] == "active"
    rotated = json.loads(run(tmp_path, "webhooks", "rotate-secret", partner).stdout)
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != secret


def _pending(tmp_path) -> tuple[str, dict]:
    partner = _partner(tmp_path)
    run(tmp_path, "webhooks", "set", partner, "--url", "http://127.0.0.1:9/hooks")
    with environment({"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_CLOCK": T0,
                      "POINTSNET_DATABASE_URL": None}):
        n = Network(get_settings())
        n.earn(partner, n.enrol(partner, phone="+8613812345678")["member_id"], "e1", points=50)
        n.close()
    [pending] = json.loads(run(tmp_path, "webhooks", "deliveries", "--json").stdout)
    return partner, pending


def test_webhooks_replay_sends_a_pending_delivery_on_a_long_backoff_now(tmp_path):
    _partner_id, pending = _pending(tmp_path)
    for n, at in enumerate(("2026-11-20T02:00:01Z", "2026-11-20T02:00:10Z", "2026-11-20T02:06:00Z"), 1):
        assert json.loads(run(tmp_path, "webhooks", "deliver", clock=at).stdout)["retrying"] == 1  # nothing on :9
        [waiting] = json.loads(run(tmp_path, "webhooks", "deliveries", "--json").stdout)
        assert waiting["attempts"] == n
    assert waiting["next_attempt_at"] > "2026-11-20T02:30:00"  # half an hour away
    replayed = json.loads(run(tmp_path, "webhooks", "replay", pending["delivery_id"],
                              clock="2026-11-20T02:07:00Z").stdout)
    assert replayed["previous_status"] == "pending" and replayed["attempts"] == 1  # tried now, counted afresh
    assert replayed["last_attempt_at"] == "2026-11-20T02:07:00+00:00"
    assert len(replayed["attempt_log"]) == 4 and replayed["next_attempt_at"] < "2026-11-20T02:07:06"


def test_webhooks_replay_refuses_a_delivery_being_sent_in_one_line_with_its_code(tmp_path):
    from shared.webhooks.delivery import claim_due

    _partner_id, pending = _pending(tmp_path)
    with environment({"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_CLOCK": T0,
                      "POINTSNET_DATABASE_URL": None}):
        n = Network(get_settings())
        assert len(n.tx(lambda tx: claim_due(tx))) == 1  # a worker is sending it right now
        n.close()
    [leased] = json.loads(run(tmp_path, "webhooks", "deliveries", "--json").stdout)
    refused = run(tmp_path, "webhooks", "replay", pending["delivery_id"], check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-400:]
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert refused.stderr.startswith("error: delivery_pending: "), refused.stderr
    [after] = json.loads(run(tmp_path, "webhooks", "deliveries", "--json").stdout)
    assert after == leased  # untouched: its lease and the worker's attempt kept


def test_webhooks_replay_refuses_a_delivery_whose_endpoint_is_disabled_in_one_line(tmp_path):
    """docs/operations.md: a replay sends the message now; to a disabled endpoint nothing is sent, so
    it is refused (endpoint_disabled, exit 2) and the message left as it was."""
    partner_id, pending = _pending(tmp_path)
    run(tmp_path, "webhooks", "disable", partner_id)
    [before] = json.loads(run(tmp_path, "webhooks", "deliveries", "--json").stdout)
    refused = run(tmp_path, "webhooks", "replay", pending["delivery_id"], clock="2026-11-20T05:00:00Z", check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-400:]
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert refused.stderr.startswith("error: endpoint_disabled: "), refused.stderr
    assert "webhooks set" in refused.stderr
    [after] = json.loads(run(tmp_path, "webhooks", "deliveries", "--json").stdout)
    assert after == before  # nothing changed


def test_webhook_refusals_print_their_stable_code(tmp_path):
    """docs/operations.md: a refusal is one line, ``error: <code>: <detail>``, like `members erase`."""
    partner = _partner(tmp_path)

    def refusal(*args, clock=T0) -> str:
        done = run(tmp_path, "webhooks", *args, clock=clock, check=False)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr[-400:]
        return done.stderr

    assert refusal("set", partner, "--url", "http://example.com/hooks").startswith("error: invalid_webhook_url: ")
    assert refusal("set", "ptn_nope", "--url", "http://127.0.0.1:9/hooks").startswith("error: unknown_partner: ")
    assert refusal("show", partner).startswith("error: unknown_webhook_endpoint: ")
    assert refusal("disable", partner).startswith("error: unknown_webhook_endpoint: ")
    assert refusal("rotate-secret", partner).startswith("error: unknown_webhook_endpoint: ")
    assert refusal("replay", "msg_nope").startswith("error: unknown_delivery: no webhook delivery msg_nope")
    assert refusal("show-delivery", "msg_nope").startswith("error: unknown_delivery: ")
    run(tmp_path, "webhooks", "set", partner, "--url", "http://127.0.0.1:9/hooks")
    run(tmp_path, "webhooks", "rotate-secret", partner)
    assert refusal("rotate-secret", partner, clock="2026-11-20T03:00:00Z").startswith(
        "error: rotation_overlap_running: ")


def test_webhooks_rotate_secret_refuses_a_second_rotation_during_the_overlap_in_one_line(tmp_path):
    partner = _partner(tmp_path)
    run(tmp_path, "webhooks", "set", partner, "--url", "http://127.0.0.1:9/hooks")
    first = json.loads(run(tmp_path, "webhooks", "rotate-secret", partner).stdout)
    refused = run(tmp_path, "webhooks", "rotate-secret", partner, clock="2026-11-20T03:00:00Z", check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-400:]
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "2026-11-21T02:00:00" in refused.stderr and "overlap of 0" in refused.stderr
    assert json.loads(run(tmp_path, "webhooks", "show", partner).stdout)["previous_secret_expires_at"] == \
        first["previous_secret_expires_at"]
    leaked = json.loads(run(tmp_path, "webhooks", "rotate-secret", partner, "--overlap-hours", "0",
                            clock="2026-11-20T03:00:00Z").stdout)
    assert leaked["secret"] != first["secret"] and leaked["previous_secret_expires_at"] == "2026-11-20T03:00:00+00:00"


def test_a_rotated_secret_whose_answer_was_lost_can_be_shown_audited(tmp_path):
    """rotate-secret shows the new secret once, and a second rotation is refused while the overlap runs: an
    answer lost (the command killed after its commit, a dropped session) left a secret no one could give
    the partner. ``webhooks show --secret`` shows it, and the audit log records that it was shown."""
    partner = _partner(tmp_path)
    run(tmp_path, "webhooks", "set", partner, "--url", "https://example.org/hook")
    rotated = json.loads(run(tmp_path, "webhooks", "rotate-secret", partner).stdout)
    again = run(tmp_path, "webhooks", "rotate-secret", partner, check=False)
    assert again.returncode == 2 and "rotation_overlap_running" in again.stderr
    assert "secret" not in json.loads(run(tmp_path, "webhooks", "show", partner).stdout)
    shown = json.loads(run(tmp_path, "webhooks", "show", partner, "--secret").stdout)
    assert shown["secret"] == rotated["secret"] and shown["secret"].startswith("whsec_")
    with environment({"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_CLOCK": T0,
                      "POINTSNET_DATABASE_URL": None}):
        from shared.access import audit

        n = Network(get_settings())
        logged = n.tx(lambda tx: audit.page(tx, limit=100)[0], readonly=True)
        n.close()
    assert [e["action"] for e in logged if e["action"].startswith("webhook.")][0] == "webhook.secret_shown"
    assert not any("whsec_" in json.dumps(e, default=str) for e in logged)
