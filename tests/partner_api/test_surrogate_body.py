"""A JSON body carrying a lone surrogate escape (valid JSON, not encodable text) must be a 4xx problem."""

from __future__ import annotations

from tests.partner_api.conftest import api, enrol, partners, serve, shop  # noqa: F401  (fixtures)


def test_lone_surrogate_in_reference_is_a_problem_not_a_500(shop):
    member = enrol(shop)
    body = ('{"member_id": "%s", "reference": "a\\ud800b", "points": 5}' % member).encode()
    answer = shop.call("POST", "/v1/earn", content=body)
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])
