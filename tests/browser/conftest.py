"""The dashboard's fixtures (a live dashboard, signed-in pages, users and partners) for browser tests here."""

from tests.dashboard.conftest import live_dashboard, page_as, partners, quick_password_hashing, settings, staff

__all__ = ["live_dashboard", "page_as", "partners", "quick_password_hashing", "settings", "staff"]
