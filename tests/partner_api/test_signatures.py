"""Profile pointsnet-v1 spoken by a standard RFC 9421 library (no Pointsnet code on the client):
accepted requests, verified answers, key rotation and revocation, nonces, @authority.
The single tampers are in test_tampers.py."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from http_message_signatures import HTTPMessageVerifier, InvalidSignature, MappingKeyResolver, algorithms

from shared.partners.keys import revoke_key
from tests.partner_api.conftest import (
    PROBLEM, Partner, assert_problem, enrol, entry_count, now, rebuild, response_components,
)


@pytest.fixture
def member(shop) -> str:
    member_id = enrol(shop, phone="+8613812345678")
    shop.ok("POST", "/v1/earn", {"member_id": member_id, "reference": "seed", "points": 1000})
    return member_id


def earn_body(member: str, reference: str = "t-1", points: int = 5) -> dict:
    return {"member_id": member, "reference": reference, "points": points}


# -- accepted --------------------------------------------------------------------------------

def test_a_library_signed_post_and_get_are_accepted_and_answers_verify(shop, member, network):
    response = shop.call("POST", "/v1/earn", {"member_id": member, "reference": "o-1", "amount": 12800})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == "earn" and body["points"] > 0 and body["transaction_id"]
    assert body["balance"]["available"] == 1000 + body["points"]
    result = shop.verify(response)
    assert result.parameters["tag"] == "pointsnet-v1-response"
    assert result.parameters["keyid"] in shop.network_keys()

    read = shop.call("GET", f"/v1/members/{member}", params={"view": "full"})  # a query is covered too
    assert read.status_code == 200, read.text
    assert read.json()["balance"]["available"] == body["balance"]["available"]
    listing = shop.call("GET", "/v1/transactions", params={"limit": 1})
    assert listing.status_code == 200 and len(listing.json()["transactions"]) == 1


def test_any_label_is_accepted_and_the_answer_binds_to_it(shop, member):
    response = shop.call("GET", f"/v1/members/{member}", label="partner-sig")
    assert response.status_code == 200, response.text
    shop.verify(response)  # covers "signature";req;key="partner-sig"


def test_network_keys_are_jwk_ed25519_and_served_unsigned(shop):
    answer = httpx.get(shop.base_url + "/v1/network/keys")
    assert answer.status_code == 200
    [key] = answer.json()["keys"]
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["kid"]
    assert len(base64.urlsafe_b64decode(key["x"] + "=" * (-len(key["x"]) % 4))) == 32
    assert "d" not in key  # never the private part


def test_a_second_active_key_works_during_rotation_and_a_revoked_one_stops(shop, member, network):
    new_key = shop.add_key()
    for key_id in (shop.key_id, new_key):
        response = shop.call("GET", f"/v1/members/{member}", key_id=key_id)
        assert response.status_code == 200, response.text
    network.tx(lambda tx: revoke_key(tx, shop.key_id))
    assert_problem(shop.call("GET", f"/v1/members/{member}"), 401, "key_revoked")
    assert shop.call("GET", f"/v1/members/{member}", key_id=new_key).status_code == 200


def test_created_inside_the_window_is_accepted(shop, member):
    for offset in (-200, 200):
        response = shop.call("GET", f"/v1/members/{member}", created=now() + timedelta(seconds=offset))
        assert response.status_code == 200, (offset, response.text)


def test_the_response_signature_does_not_verify_for_another_request(shop, member):
    """A captured answer replayed as the answer to another request fails verification."""
    first = shop.call("GET", f"/v1/members/{member}")
    other = shop.build("GET", f"/v1/members/{member}")  # same route, fresh signature
    forged = httpx.Response(first.status_code, headers=first.headers, content=first.content, request=other)
    verifier = HTTPMessageVerifier(signature_algorithm=algorithms.ED25519, key_resolver=MappingKeyResolver(
        public_keys=shop.network_keys(), private_keys={}))
    with pytest.raises(InvalidSignature):
        verifier.verify(forged, expect_tag="pointsnet-v1-response", require_components=response_components("sig1"),
                        body=forged.content)
    tampered_body = httpx.Response(first.status_code, headers=first.headers, content=first.content + b" ",
                                   request=first.request)
    with pytest.raises(Exception):
        verifier.verify(tampered_body, expect_tag="pointsnet-v1-response",
                        require_components=response_components("sig1"), body=tampered_body.content)


# -- more refusals -----------------------------------------------------------------------------

def test_a_revoked_key_is_refused(shop, member, network):
    network.tx(lambda tx: revoke_key(tx, shop.key_id))
    response = shop.call("POST", "/v1/earn", earn_body(member))
    assert_problem(response, 401, "key_revoked")


def test_a_nonce_is_single_use_per_key(shop, member, network):
    nonce = "fixed-nonce-1"
    first = shop.call("GET", f"/v1/members/{member}", nonce=nonce)
    assert first.status_code == 200, first.text
    # the very same nonce on a different, freshly signed request
    again = shop.call("POST", "/v1/earn", earn_body(member, "n-1"), nonce=nonce)
    assert_problem(again, 401, "nonce_reused")
    assert entry_count(network) == 1
    # nonces are per key: the partner's second key may use it
    other_key = shop.add_key()
    assert shop.call("GET", f"/v1/members/{member}", nonce=nonce, key_id=other_key).status_code == 200


def test_replaying_an_identical_signed_request_is_refused(shop, member, network):
    request = shop.build("POST", "/v1/earn", earn_body(member, "r-1"))
    first = shop.send(request)
    assert first.status_code == 200, first.text
    replay = shop.send(rebuild(request))
    assert_problem(replay, 401, "nonce_reused")
    assert entry_count(network) == 2  # seed + r-1, once


def test_a_signature_without_nonce_or_keyid_is_malformed(shop, member):
    response = shop.call("GET", f"/v1/members/{member}", nonce=None)
    assert_problem(response, 401, "signature_malformed")


def test_public_authority_is_what_is_signed_behind_a_proxy(make_network, serve):
    """With POINTSNET_PUBLIC_AUTHORITY set, @authority is checked against it, not the Host seen."""
    network = make_network(public_authority="points.example.com")
    base = serve(network)
    partner = Partner(network, base)
    try:
        as_seen = partner.call("GET", "/v1/transactions")
        assert_problem(as_seen, 401, "signature_invalid")
        request = partner.build("GET", "/v1/transactions", sign=False)
        view = httpx.Request("GET", request.url.copy_with(host="points.example.com", port=None),
                             headers=request.headers)
        partner.sign(view)
        for name in ("signature", "signature-input"):
            request.headers[name] = view.headers[name]
        response = partner.send(request)
        assert response.status_code == 200, response.text
    finally:
        partner.close()


def test_every_refusal_at_the_door_is_problem_json(shop, member):
    unsigned = shop.http.get(f"/v1/members/{member}")
    assert_problem(unsigned, 401, "signature_missing")
    assert unsigned.headers["content-type"].startswith(PROBLEM)


# -- the documented curl and openssl example (docs 7) --------------------------------------------

CURL_SIGN = Path(__file__).resolve().parents[2] / "docs/examples/curl-sign.sh"


def _curl_sign(shop, tmp_path, method: str, path: str, body: str | None = None) -> str:
    """docs/examples/curl-sign.sh as the guide runs it: openssl signs, curl sends; its output is the answer."""
    pem = shop.keys[shop.key_id].private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption())
    (tmp_path / "shop.pem").write_bytes(pem)
    env = dict(os.environ, AUTHORITY=shop.base_url.split("//", 1)[1], KEY_ID=shop.key_id,
               KEY_FILE=str(tmp_path / "shop.pem"), SCHEME="http", TMPDIR=str(tmp_path))
    done = subprocess.run(["bash", str(CURL_SIGN), method, path, *([body] if body is not None else [])], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_curl_sign_example_signs_a_get_and_a_post(shop, tmp_path):
    assert "transactions" in json.loads(_curl_sign(shop, tmp_path, "GET", "/v1/transactions"))
    enrolled = json.loads(_curl_sign(shop, tmp_path, "POST", "/v1/members", '{"phone":"+8613912345678"}'))
    assert enrolled["created"] is True, enrolled


@pytest.mark.parametrize("path", ["/v1/transactions?limit=1", "/v1/reports?from=2026-11-01&to=2026-11-30",
                                  "/v1/transactions?"])
def test_the_curl_sign_example_signs_a_query(shop, tmp_path, path):
    """Found by review: the script signed "@path" as PATH?query and "@query" always as `?`, so every
    paged list and report answered 401 signature_invalid. "@path" is the part before the first `?`,
    "@query" that `?` and the rest (`?` alone without a query)."""
    answer = json.loads(_curl_sign(shop, tmp_path, "GET", path))
    assert "code" not in answer, answer


def test_the_curl_sign_example_signs_requests_run_at_the_same_time_and_leaves_no_file(shop, tmp_path):
    """Found by review: the script wrote every signature base to one fixed file in $TMPDIR, so two tills
    signing at once signed each other's bases (401 signature_invalid), and any local user could plant a
    symlink at that name. Each run has a file of its own, removed when the run ends."""
    member = enrol(shop)
    pem = shop.keys[shop.key_id].private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption())
    (tmp_path / "shop.pem").write_bytes(pem)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    (scratch / "pointsnet-signature-base.txt").symlink_to(tmp_path / "planted")  # a trap at the old name
    env = dict(os.environ, AUTHORITY=shop.base_url.split("//", 1)[1], KEY_ID=shop.key_id,
               KEY_FILE=str(tmp_path / "shop.pem"), SCHEME="http", TMPDIR=str(scratch))
    runs = [subprocess.Popen(["bash", str(CURL_SIGN), "POST", "/v1/earn",
                              json.dumps({"member_id": member, "reference": f"till-{n}", "points": 10 + n})],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(12)]
    answers = [(run.communicate(timeout=120), run.returncode) for run in runs]
    refused = [(code, out, err[-200:]) for (out, err), code in answers if code != 0 or '"code"' in out]
    assert refused == [], f"{len(refused)} of {len(runs)} refused: {refused[:3]}"
    assert sorted(json.loads(out)["points"] for (out, _), _ in answers) == list(range(10, 22))
    assert not (tmp_path / "planted").exists()
    assert [p.name for p in scratch.iterdir()] == ["pointsnet-signature-base.txt"]  # only the planted link
