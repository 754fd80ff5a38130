"""OWASP API2:2023 Broken authentication: a property test of the signature verifier.

Hypothesis corrupts a correctly signed request — its Signature-Input, Signature, Content-Digest,
body, parameters, or drops a header — and sends it to the running API. Whatever it builds, the
answer is never a 5xx and never accepted (no 2xx, nothing posted).

The fixed cases (each tamper with its code, replay, nonce reuse, revoked keys, freshness) are in
tests/partner_api/test_signatures.py and tests/partner_api/test_tampers.py.
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from tests.partner_api.conftest import entry_count, rebuild

HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=300).map(str.strip)
SIGNED_HEADERS = ("signature", "signature-input", "content-digest", "idempotency-key")


PARAMS = st.sampled_from(["created", "keyid", "alg", "nonce", "tag", "expires"])
PARAM_VALUES = st.one_of(st.integers(min_value=-2**70, max_value=2**70).map(str), HEADER_TEXT.map(lambda t: f'"{t.replace(chr(34), "").replace(chr(92), "")}"'),
                         st.sampled_from(['"ed25519"', '"hmac-sha256"', '"rsa-pss-sha512"', "?1", "1.5", '""']))

MUTATIONS = st.one_of(
    st.tuples(st.just("replace_header"), st.sampled_from(SIGNED_HEADERS), HEADER_TEXT),
    st.tuples(st.just("random_signature"), st.binary(min_size=0, max_size=128)),
    st.tuples(st.just("body"), st.binary(max_size=400)),
    st.tuples(st.just("param"), PARAMS, PARAM_VALUES),
    st.tuples(st.just("drop"), st.sampled_from(SIGNED_HEADERS)),
    st.tuples(st.just("components"), st.lists(st.sampled_from(
        ['"@method"', '"@authority"', '"@path"', '"@query"', '"content-digest"', '"idempotency-key"',
         '"@target-uri"', '"content-type"', '"host"']), unique=True, max_size=8)),
    st.tuples(st.just("label"), st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True)),
)


BODY_BOUND = ("content-digest", "idempotency-key")  # signed on POST only


def _mutate(request, mutation):
    kind = mutation[0]
    headers = request.headers
    if request.method == "GET":  # a GET signs no body: its body and body headers are not the signature's
        assume(kind != "body" and not (kind in ("replace_header", "drop") and mutation[1] in BODY_BOUND))
    if kind == "replace_header":
        _, name, value = mutation
        assume(headers.get(name) != value)
        return rebuild(request, set_headers={name: value})
    if kind == "random_signature":
        label = headers["signature"].split("=", 1)[0]
        return rebuild(request, set_headers={"signature": f"{label}=:{base64.b64encode(mutation[1]).decode()}:"})
    if kind == "body":
        assume(mutation[1] != request.content)
        return rebuild(request, content=mutation[1])
    if kind == "param":
        _, name, value = mutation
        signature_input = headers["signature-input"]
        components, _, params = signature_input.partition(";")
        kept = [p for p in params.split(";") if not p.startswith(name + "=")]
        changed = ";".join([components, *kept, f"{name}={value}"])
        assume(changed != signature_input)
        return rebuild(request, set_headers={"signature-input": changed})
    if kind == "drop":
        return rebuild(request, drop_headers=(mutation[1],))
    if kind == "components":
        signature_input = headers["signature-input"]
        label, _, rest = signature_input.partition("=")
        _, _, params = rest.partition(")")
        changed = f"{label}=({' '.join(mutation[1])}){params}"
        assume(changed != signature_input)
        return rebuild(request, set_headers={"signature-input": changed})
    if kind == "label":  # the signature renamed: the Signature-Input no longer names it
        old = headers["signature"].split("=", 1)[0]
        assume(mutation[1] != old)
        return rebuild(request, set_headers={"signature": mutation[1] + headers["signature"][len(old):]})
    raise AssertionError(kind)


@pytest.fixture
def member(shop) -> str:
    return shop.ok("POST", "/v1/members", {"phone": "+8613800009999"})["member_id"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=MUTATIONS, method=st.sampled_from(["POST", "GET"]))
def test_a_corrupted_signed_request_is_never_accepted_and_never_a_5xx(shop, member, network, mutation, method):
    before = entry_count(network)
    if method == "POST":
        request = shop.build("POST", "/v1/earn", {"member_id": member, "reference": "fuzz", "points": 1})
    else:
        request = shop.build("GET", f"/v1/members/{member}")
    response = shop.send(_mutate(request, mutation), verify=False)
    assert response.status_code < 500, (mutation, response.status_code, response.text)
    assert not 200 <= response.status_code < 300, (mutation, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert entry_count(network) == before


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(signature_input=HEADER_TEXT, signature=HEADER_TEXT, body=st.binary(max_size=200))
def test_arbitrary_signature_headers_never_authenticate(shop, network, signature_input, signature, body):
    request = shop.build("POST", "/v1/earn", content=body or b"{}", sign=False)
    request = rebuild(request, set_headers={"signature-input": signature_input, "signature": signature})
    response = shop.send(request, verify=False)
    assert 400 <= response.status_code < 500, (signature_input, signature, response.status_code, response.text)


@pytest.mark.parametrize("created", [-62135596801, -999_999_999_999_999, 999_999_999_999_999, 253402300800])
def test_a_created_time_outside_the_calendar_is_refused_not_a_5xx(shop, member, created):
    """Found by the fuzz test above: a `created` before year 1 or after 9999 made a 500."""
    request = shop.build("GET", f"/v1/members/{member}/balance")
    components, _, params = request.headers["signature-input"].partition(";")
    kept = [p for p in params.split(";") if not p.startswith("created=")]
    answer = shop.send(rebuild(request, set_headers={"signature-input": ";".join([components, *kept,
                                                                                   f"created={created}"])}))
    assert answer.status_code == 401 and answer.json()["code"].startswith("signature"), answer.text
