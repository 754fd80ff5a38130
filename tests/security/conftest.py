"""Security tests run against a real partner API, as partners (and attackers) would call it."""

from tests.partner_api.conftest import api, make_network, partners, serve, shop  # noqa: F401  (fixtures)
