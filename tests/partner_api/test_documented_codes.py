"""What the API answers is what its OpenAPI document and the integration guide say: the problem codes
each route lists, the guide's errors table (section 6), malformed JSON, and a reversal's default."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.partner_api.app import create_app
from tests.factories import make_partner
from tests.partner_api.conftest import Partner, assert_problem, enrol

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "partner-integration.md"
OPENAPI = create_app(None).openapi()
PROBLEM_TYPE = "https://pointsnet.dev/problems/"


def listed(path: str, method: str, status: int) -> set[str]:
    """The problem codes the OpenAPI document lists for one route and status."""
    response = OPENAPI["paths"][path][method]["responses"].get(str(status))
    return set(re.findall(r"`([a-z_]+)`", response["description"])) - {"code"} if response else set()


def guide_errors_table() -> dict[str, set[str]]:
    """docs/partner-integration.md section 6: status -> the codes its row names."""
    text = GUIDE.read_text()
    section = text[text.index("## 6. Errors"):text.index("**Suspension and termination.**")]
    rows = re.findall(r"^\| (\d{3}) \| (.*) \|$", section, re.MULTILINE)
    return {status: set(re.findall(r"`([a-z_]+)`", codes)) for status, codes in rows}


class DearPartner(Partner):
    """A partner whose point is worth 10 fen: 10^12 points are 10^19 micro-fen, beyond one ledger amount."""

    def __init__(self, network, base_url):
        import httpx

        self.network, self.base_url = network, base_url
        self.partner_id = make_partner(network, "Dear Shop", point_value="10")
        self.keys = {}
        self.key_id = self.add_key()
        self.http = httpx.Client(base_url=base_url, timeout=60)
        self._network_keys = None


# -- each route's OpenAPI lists the codes it answers ------------------------------------------------

@pytest.mark.parametrize("path", ["/v1/burn", "/v1/holds"])
def test_a_spend_whose_money_does_not_fit_answers_invalid_amount_as_its_openapi_lists(network, api, path):
    dear = DearPartner(network, api)
    try:
        member = enrol(dear)
        answer = dear.call("POST", path, {"member_id": member, "reference": "big", "points": 10**12})
        assert_problem(answer, 422, "invalid_amount")
    finally:
        dear.close()
    assert "invalid_amount" in listed(path, "post", 422)


@pytest.mark.parametrize("path", ["/v1/burn", "/v1/holds", "/v1/holds/{hold_id}/capture", "/v1/activities"])
def test_routes_whose_money_may_not_fit_list_invalid_amount(path):
    # the guide's "Bounds": an earn, activity award, burn, hold or capture whose money would not fit one
    # ledger amount is 422 invalid_amount
    assert "invalid_amount" in listed(path, "post", 422)


@pytest.mark.parametrize("original", ["e1", "b1"])
def test_a_reversal_for_an_erased_member_is_409_member_erased_as_earn_and_burn_answer(shop, network, original):
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e1", "points": 50})
    shop.ok("POST", "/v1/burn", {"member_id": member, "reference": "b1", "points": 20})
    network.erase_member(member)
    assert_problem(shop.call("POST", "/v1/burn", {"member_id": member, "reference": "b2", "points": 1}),
                   409, "member_erased")
    answer = shop.call("POST", "/v1/reversals", {"reference": "r1", "original_reference": original})
    assert_problem(answer, 409, "member_erased")
    assert "member_erased" in listed("/v1/reversals", "post", 409)


def test_a_reversal_in_a_batch_for_an_erased_member_is_refused_member_erased_at_its_index(shop, network):
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e1", "points": 50})
    network.erase_member(member)
    answer = shop.ok("POST", "/v1/batch", {"events": [
        {"type": "reversal", "reference": "r1", "original_reference": "e1"}]})
    [result] = answer["results"]
    assert (result["status"], result["problem"]["code"]) == (409, "member_erased")


@pytest.mark.parametrize("path", ["/v1/members", "/v1/earn", "/v1/earn/quote", "/v1/activities", "/v1/burn",
                                  "/v1/holds", "/v1/holds/{hold_id}/capture", "/v1/holds/{hold_id}/void",
                                  "/v1/reversals", "/v1/batch"])
def test_routes_with_a_json_body_list_malformed_request(path):
    assert "malformed_request" in listed(path, "post", 400)


def test_every_post_declares_the_idempotency_key_header_the_door_requires(shop):
    """docs 3: every POST carries an Idempotency-Key (1 to 255 visible ASCII characters, else 400). The
    served document declares it as a required header on each POST, so a generated client or Swagger
    UI's "Try it out" sends one; the declared bounds are the door's: 255 characters pass, 256 do not."""
    served = shop.http.get("/openapi.json").json()
    declared = {}
    for path, operations in served["paths"].items():
        for method, operation in operations.items():
            headers = [p for p in operation.get("parameters", [])
                       if p["in"] == "header" and p["name"].lower() == "idempotency-key"]
            if method == "post":
                [declared[path]] = headers
            else:
                assert headers == [], (method, path)
    assert {"/v1/members", "/v1/earn", "/v1/earn/quote", "/v1/batch", "/v1/holds/{hold_id}/void"} <= set(declared)
    for path, header in declared.items():
        assert header["required"] is True, path
        assert (header["schema"]["type"], header["schema"]["minLength"], header["schema"]["maxLength"]) == (
            "string", 1, 255), path
    member = enrol(shop)
    body = {"member_id": member, "reference": "k-255", "points": 1}
    assert shop.ok("POST", "/v1/earn", body, idempotency_key="k" * 255)["points"] == 1
    assert_problem(shop.call("POST", "/v1/earn", {**body, "reference": "k-256"}, idempotency_key="k" * 256),
                   400, "idempotency_key_invalid")


def test_the_quote_lists_no_code_of_a_kept_answer(shop):
    """A quote is not stored for its Idempotency-Key (docs 5): one key for two quotes answers both, and the
    same key then posts the earn. Its OpenAPI entry listed 422 `idempotency_key_reused` and 409
    `request_in_progress`, which it never answers (until 2026-12-07); the door's two stay."""
    member = enrol(shop)
    for points in (5, 7):
        quote = shop.call("POST", "/v1/earn/quote", {"member_id": member, "reference": f"q{points}", "points": points},
                          idempotency_key="K-Q")
        assert quote.status_code == 200 and quote.json()["points"] == points, quote.text
    assert shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e", "points": 3},
                   idempotency_key="K-Q")["points"] == 3
    listed_codes = {code for status in (400, 409, 422) for code in listed("/v1/earn/quote", "post", status)}
    assert {"idempotency_key_missing", "idempotency_key_invalid"} <= listed_codes
    assert not {"idempotency_key_reused", "request_in_progress"} & listed_codes
    assert {"idempotency_key_reused", "request_in_progress"} <= {
        code for status in (409, 422) for code in listed("/v1/earn", "post", status)}


# -- the guide's errors table ---------------------------------------------------------------------

def test_every_code_the_openapi_lists_is_in_the_guides_errors_table_under_its_status():
    table = guide_errors_table()
    missing = []
    for path, route in OPENAPI["paths"].items():
        for method, operation in route.items():
            for status, response in operation.get("responses", {}).items():
                if status.startswith(("4", "5")):
                    for code in listed(path, method, int(status)):
                        if code not in table.get(status, set()):
                            missing.append((status, code))
    assert not missing, sorted(set(missing))


def test_the_guides_errors_table_names_the_answers_to_unknown_routes_and_methods(shop):
    table = guide_errors_table()
    assert_problem(shop.call("GET", "/v1/nowhere"), 404, "not_found")
    assert_problem(shop.call("DELETE", "/v1/transactions"), 405, "method_not_allowed")
    assert "not_found" in table["404"] and "method_not_allowed" in table["405"]
    assert "member_erased" in table["409"] and "batch_too_large" in table["422"]


# -- malformed requests --------------------------------------------------------------------------

@pytest.mark.parametrize("content", [b'{"member_id": ', b"{not json", b'{"points": 5,}', b"\xff\xfe",
                                     b'{"member_id": "\xff"}'])  # the last one: not UTF-8
def test_a_body_that_is_not_json_is_400_malformed_request_and_not_stored(shop, content):
    answer = shop.call("POST", "/v1/earn", content=content, idempotency_key="MJ-1")
    body = assert_problem(answer, 400, "malformed_request")
    assert body["type"] == PROBLEM_TYPE + "malformed-request", body
    assert "errors" not in body and "Traceback" not in answer.text
    member = enrol(shop)
    good = shop.call("POST", "/v1/earn", {"member_id": member, "reference": "mj", "points": 5},
                     idempotency_key="MJ-1")
    assert good.status_code == 200 and "idempotent-replayed" not in good.headers, good.text


def test_json_of_the_wrong_shape_is_still_422_validation_failed(shop):
    for content in (b"[]", b'{"member_id": 5}', b'"text"'):
        body = assert_problem(shop.call("POST", "/v1/earn", content=content), 422, "validation_failed")
        assert body["errors"], body


def test_a_malformed_batch_is_400_malformed_request(shop):
    assert_problem(shop.call("POST", "/v1/batch", content=b'{"events": [{"type": "earn"'), 400, "malformed_request")


# -- a reversal's default -----------------------------------------------------------------------

def test_the_openapi_says_what_a_reversal_without_points_asks_for(shop):
    """docs/ledger.md decision 12: for an earn, everything not yet reversed (refused as
    points_already_spent if some was spent); for a burn or capture, everything not yet returned."""
    described = OPENAPI["components"]["schemas"]["ReversalRequest"]["properties"]["points"]["description"]
    assert "all that can be reversed" not in described
    assert "points_already_spent" in described and "not yet reversed" in described, described
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e1", "points": 100})
    shop.ok("POST", "/v1/burn", {"member_id": member, "reference": "b1", "points": 30})
    # an earn partly spent: not its unspent 70, but the whole 100, refused
    refused = assert_problem(shop.call("POST", "/v1/reversals", {"reference": "r1", "original_reference": "e1"}),
                             409, "points_already_spent")
    assert refused["detail"]
    # a burn: everything not yet returned
    shop.ok("POST", "/v1/reversals", {"reference": "r2", "original_reference": "b1", "points": 10})
    assert shop.ok("POST", "/v1/reversals", {"reference": "r3", "original_reference": "b1"})["points"] == 20


def test_the_answers_sent_with_retry_after_declare_it_and_no_other_does():
    """rate_limited (429) and request_in_progress (409) carry Retry-After on the wire: the document says so
    wherever it lists them, so that a generated client reads it (found by the SDK review: undeclared)."""
    declared = 0
    for path, operations in OPENAPI["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                codes = listed(path, method, int(status)) if status.isdigit() else set()
                header = response.get("headers", {}).get("Retry-After")
                if codes & {"rate_limited", "request_in_progress"}:
                    assert header and header["schema"] == {"type": "integer"}, (path, method, status)
                    declared += 1
                else:
                    assert header is None, (path, method, status)
    posts = [path for path, operations in OPENAPI["paths"].items() if "post" in operations]
    assert declared > 2 * len(posts)  # each POST's 409 and 429, and the reads' 429


def test_a_void_lists_no_points_code_it_cannot_answer(shop):
    """A void takes no points: its body is a reference at most, so points in it are 422
    `validation_failed` and never `invalid_points`, which its OpenAPI entry listed until 2026-12-07."""
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e1", "points": 50})
    hold = shop.ok("POST", "/v1/holds", {"member_id": member, "reference": "h1", "points": 20})
    assert_problem(shop.call("POST", f"/v1/holds/{hold['hold_id']}/void", {"points": 0}), 422, "validation_failed")
    assert_problem(shop.call("POST", f"/v1/holds/{hold['hold_id']}/void", {"points": 5}), 422, "validation_failed")
    assert "invalid_points" not in listed("/v1/holds/{hold_id}/void", "post", 422)
    assert "validation_failed" in listed("/v1/holds/{hold_id}/void", "post", 422)
