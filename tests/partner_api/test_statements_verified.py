"""A statement is served only as the network signed it: its SHA-256 the one the cycle's manifest lists,
the manifest signed by the network and the one the cycle's settlement run wrote. A statement or manifest
edited on disk since is 503 ``statement_unavailable`` on both endpoints (never its bytes), with an error
logged and an operator alert; restored from a backup, it is served again."""

from __future__ import annotations

import hashlib
import json
import logging

from shared.alerts import list_alerts
from shared.settlement.runs import settlement_dir, sign_manifest
from tests.partner_api.conftest import Partner, assert_problem
from tests.partner_api.test_statements import settled_days


def paths(cycle) -> tuple[str, str]:
    return f"/v1/statements/{cycle.isoformat()}", f"/v1/statements/{cycle.isoformat()}/statement.csv"


def tampered(content: str) -> str:
    """The statement with its net record's amount changed (-50 -> -950)."""
    net = [line for line in content.splitlines() if line.startswith("N,")][0]
    assert ",-" in net, net
    return content.replace(net, net.replace(",-", ",-9"))


def refused(partner, cycle, forged: str | None = None) -> None:
    for path in paths(cycle):
        answer = partner.call("GET", path)
        body = assert_problem(answer, 503, "statement_unavailable")
        assert "record_type" not in answer.text and (forged is None or forged not in answer.text), body
        assert "settlements" not in body["detail"], body  # no file names or paths of the host's


def alerted(network, partner_id: str) -> list[dict]:
    return [a for a in network.tx(list_alerts, readonly=True)
            if a["kind"] == "statement_unverified" and a["partner_id"] == partner_id]


def test_an_edited_statement_is_refused_on_both_endpoints_until_restored(network, clock, shop, api, caplog):
    other = Partner(network, api)
    [cycle] = settled_days(network, clock, shop, other, 1)
    served = shop.ok("GET", paths(cycle)[0])
    path = settlement_dir(network.settings.data_dir, cycle) / f"statement-{shop.partner_id}.csv"
    original = path.read_bytes()
    forged = tampered(original.decode())
    path.write_text(forged)
    with caplog.at_level(logging.ERROR, logger="services.partner_api.routes"):
        refused(shop, cycle, forged=[line for line in forged.splitlines() if line.startswith("N,")][0])
    assert any(r.levelno == logging.ERROR and "SHA-256 differs from the manifest" in r.getMessage()
               and "pointsnet reconcile" in r.getMessage() for r in caplog.records), caplog.text
    [alert] = alerted(network, shop.partner_id)
    assert alert["count"] == 2 and alert["detail"]["cycle_date"] == cycle.isoformat(), alert
    path.write_bytes(original)  # restored from a backup
    assert shop.ok("GET", paths(cycle)[0]) == served
    assert shop.call("GET", paths(cycle)[1]).content == original


def test_a_manifest_edited_to_list_the_edited_statement_is_refused(network, clock, shop, api):
    """The manifest's digest changed to the edited statement's: its signature no longer verifies."""
    other = Partner(network, api)
    [cycle] = settled_days(network, clock, shop, other, 1)
    directory = settlement_dir(network.settings.data_dir, cycle)
    name = f"statement-{shop.partner_id}.csv"
    forged = tampered((directory / name).read_text()).encode()
    (directory / name).write_bytes(forged)
    manifest = json.loads((directory / "manifest.json").read_bytes())
    next(f for f in manifest["files"] if f["name"] == name)["sha256"] = hashlib.sha256(forged).hexdigest()
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    refused(shop, cycle)
    assert alerted(network, shop.partner_id)


def test_a_signed_manifest_that_is_not_the_runs_own_is_refused(network, clock, shop, api):
    """Even signed with the network's key, a manifest other than the one the cycle's run wrote (its SHA-256
    kept with the run) is not the statement's record: a statement it lists is not served."""
    other = Partner(network, api)
    [cycle] = settled_days(network, clock, shop, other, 1)
    directory = settlement_dir(network.settings.data_dir, cycle)
    name = f"statement-{shop.partner_id}.csv"
    forged = tampered((directory / name).read_text()).encode()
    (directory / name).write_bytes(forged)
    manifest = json.loads((directory / "manifest.json").read_bytes())
    next(f for f in manifest["files"] if f["name"] == name)["sha256"] = hashlib.sha256(forged).hexdigest()
    content = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    (directory / "manifest.json").write_bytes(content)
    (directory / "manifest.json.sig").write_bytes(sign_manifest(content, network.signing_key))
    refused(shop, cycle)


def test_a_statement_whose_manifest_is_missing_is_refused(network, clock, shop, api):
    other = Partner(network, api)
    [cycle] = settled_days(network, clock, shop, other, 1)
    (settlement_dir(network.settings.data_dir, cycle) / "manifest.json.sig").unlink()
    refused(shop, cycle)
    refused(other, cycle)  # every statement of the cycle: the manifest vouches for none now


def test_a_deleted_statement_is_told_to_the_operators_named_by_verify_and_written_again(network, clock, shop, api,
                                                                                      caplog):
    """Found by the file-system faults review: a statement deleted from its cycle's directory answered 503
    for ever, with no alert, no log line, nothing from ``verify``, and ``clearing run --cycle D`` said
    'nothing changed'. Now the operators are told, verify names the file, and the run writes it again."""
    from shared.ledger.verify import verify

    other = Partner(network, api)
    [cycle] = settled_days(network, clock, shop, other, 1)
    directory = settlement_dir(network.settings.data_dir, cycle)
    served, before = shop.ok("GET", paths(cycle)[0]), {p.name: p.read_bytes() for p in directory.iterdir()}
    (directory / f"statement-{shop.partner_id}.csv").unlink()
    with caplog.at_level(logging.ERROR, logger="services.partner_api.routes"):
        refused(shop, cycle)
    assert any("is not served" in r.getMessage() and "missing" in r.getMessage() for r in caplog.records), caplog.text
    [alert] = alerted(network, shop.partner_id)
    assert "FileNotFoundError" in alert["detail"]["problem"], alert
    key = network.signing_key.public_key()
    findings = [(o.check, o.subject) for o in network.tx(lambda tx: verify(tx, public_key=key), readonly=True).offences]
    assert findings == [("settlement_file_missing", cycle.isoformat())], findings
    assert network.settle(cycle)["rewritten"] is True
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == before
    assert shop.ok("GET", paths(cycle)[0]) == served
    assert network.tx(lambda tx: verify(tx, public_key=key), readonly=True).ok
