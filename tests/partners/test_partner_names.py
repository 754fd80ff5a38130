"""One name per partner, compared without case, spacing at either end or Unicode form: refused on
onboarding (library, CLI, dashboard) with the duplicate-name error, and by the database itself;
migration 0041 stops, naming them, on a database that already holds such twins."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.exc import IntegrityError

from shared.db.database import normalise_url
from shared.db.migrate import alembic_config
from shared.errors import ValidationFailed
from shared.models import Partner
from shared.partners.names import comparable, name_key
from tests.cli.test_commands import one_line_error, pointsnet
from shared.access import users
from shared.config import Settings
from tests.dashboard.conftest import BASE, PASSWORD, make_client, post_form, sign_in

TWINS = ["airlink ", "AIRLINK", "  AirLink", "ＡｉｒＬｉｎｋ", "\u3000AirLink", "AirLink\u00a0"]
ONBOARD = {"billing": "prepaid", "point_value": "1.5", "issuance_fee": "0.1", "redemption_fee_rate": "0.05",
           "breakage_share": "0.2", "base_rate": "2"}


@pytest.fixture
def settings(tmp_path) -> Settings:
    # the dashboard over TestClient's plain http: cookies without the Secure flag
    return Settings(data_dir=tmp_path / "data", dashboard_secure_cookies=False)


def test_names_are_compared_trimmed_case_folded_and_nfkc():
    assert {comparable(name) for name in TWINS + ["AirLink"]} == {"airlink"}
    assert comparable("Straße") == comparable("STRASSE") and comparable("ﬁnance") == comparable("Finance")
    assert name_key("AirLink") == name_key("airlink ") != name_key("Air Link")
    assert len(name_key("ﷺ" * 200)) == 64  # a fixed width, however much folding lengthens a name


@pytest.mark.parametrize("twin", TWINS)
def test_a_name_that_differs_only_in_case_spacing_or_form_is_the_duplicate_name_error(network, twin):
    network.create_partner("AirLink")
    with pytest.raises(ValidationFailed) as refused:
        network.create_partner(twin)
    assert refused.value.code == "validation_failed"
    assert "a partner named 'AirLink' already exists" in refused.value.detail
    assert network.tx(lambda tx: tx.session.scalar(select(func.count()).select_from(Partner)), readonly=True) == 1


def test_an_exact_duplicate_is_refused_as_before(network):
    network.create_partner("AirLink")
    with pytest.raises(ValidationFailed, match="a partner named 'AirLink' already exists$"):
        network.create_partner("AirLink")


def test_a_different_name_is_still_accepted(network):
    network.create_partner("AirLink")
    assert network.create_partner("Air Link")["name"] == "Air Link"
    assert network.create_partner("AirLink2")["name"] == "AirLink2"


def test_a_name_longer_than_the_column_is_refused_as_bad_input(network):
    with pytest.raises(ValidationFailed, match="at most 200 characters"):
        network.create_partner("x" * 201)


def test_the_database_refuses_twins_written_around_onboarding(network):
    """The unique name_key, computed by the model for any insert, refuses what bypasses create_partner."""
    network.create_partner("AirLink")
    stored = network.tx(lambda tx: tx.session.execute(select(Partner.name_key)).scalar_one(), readonly=True)
    assert stored == name_key("AirLink")
    with pytest.raises(IntegrityError):
        network.tx(lambda tx: tx.session.execute(insert(Partner.__table__).values(
            id="ptn_twin", name="airlink", status="active", created_at=tx.now)))


def test_twins_onboarded_at_once_give_one_partner_and_the_duplicate_name_error(network):
    """Both units may pass the check before either commits: the unique name_key refuses the second
    insert, the unit is retried and then finds the first partner: the same error, never a 500."""
    from concurrent.futures import ThreadPoolExecutor

    for round_ in range(5):
        names = [f"Shop{round_}", f" shop{round_}"]
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(network.create_partner, name) for name in names]
        outcomes = [f.exception() or f.result() for f in futures]
        made = [o for o in outcomes if isinstance(o, dict)]
        refused = [o for o in outcomes if not isinstance(o, dict)]
        assert len(made) == 1 and len(refused) == 1, outcomes
        assert isinstance(refused[0], ValidationFailed) and "already exists" in refused[0].detail


def test_the_cli_refuses_a_twin_with_one_line(tmp_path):
    assert pointsnet(tmp_path, "db", "upgrade").returncode == 0
    pointsnet(tmp_path, "partners", "add", "AirLink", check=True)
    twin = pointsnet(tmp_path, "partners", "add", "airlink ")
    assert one_line_error(twin) and twin.stdout == "", twin.stderr
    assert "a partner named 'AirLink' already exists" in twin.stderr, twin.stderr


def test_the_dashboard_refuses_a_twin_beside_the_form(network):
    network.create_partner("TeaHouse")
    password = users.new_password(PASSWORD)
    network.tx(lambda tx: users.add_user(tx, "op@example.org", "operator", password))
    client = make_client(network)
    assert sign_in(client, "op@example.org").status_code == 303
    try:
        answer = post_form(client, f"{BASE}/partners", ONBOARD | {"name": "teahouse "}, page=f"{BASE}/partners/new")
    finally:
        client.close()
    assert answer.status_code == 422 and 'data-code="validation_failed"' in answer.text
    assert "already exists" in answer.text
    assert network.tx(lambda tx: tx.session.scalar(select(func.count()).select_from(Partner)
                                                   .where(func.lower(Partner.name) == "teahouse")),
                      readonly=True) == 1


# -- migration 0041 -------------------------------------------------------------------------------

def _migrate(url: str, revision: str, *, down: bool = False) -> None:
    engine = create_engine(normalise_url(url))
    try:
        with engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, revision)
    finally:
        engine.dispose()


def _insert_partners(url: str, names: dict[str, str]) -> None:
    engine = create_engine(normalise_url(url))
    try:
        with engine.begin() as connection:
            for partner_id, name in names.items():
                connection.execute(text("INSERT INTO partners (id, name, status, created_at) "
                                        "VALUES (:id, :name, 'active', '2026-11-20 00:00:00')"),
                                   {"id": partner_id, "name": name})
    finally:
        engine.dispose()


def _query(url: str, sql: str) -> list:
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql)).all()
    finally:
        engine.dispose()


def test_0041_stops_naming_the_twins_and_changes_nothing_until_they_are_renamed(database_url):
    _migrate(database_url, "0040", down=True)
    try:
        _insert_partners(database_url, {"ptn_a": "AirLink", "ptn_b": "airlink", "ptn_c": "ＡＩＲＬＩＮＫ",
                                        "ptn_d": "BookMart", "ptn_e": "Straße", "ptn_f": "STRASSE"})
        with pytest.raises(Exception) as stopped:
            _migrate(database_url, "head")
        message = str(stopped.value)
        assert "migration 0041 stopped, nothing changed: 2 group(s)" in message
        assert all(f"{pid} {name!r}" in message for pid, name in (
            ("ptn_a", "AirLink"), ("ptn_b", "airlink"), ("ptn_c", "ＡＩＲＬＩＮＫ"), ("ptn_e", "Straße"),
            ("ptn_f", "STRASSE")))
        assert "ptn_d" not in message
        assert _query(database_url, "SELECT version_num FROM alembic_version") == [("0040",)]
        columns = _query(database_url, "SELECT * FROM partners WHERE id = 'ptn_a'")
        assert len(columns[0]) == 4  # no name_key column was added
        engine = create_engine(normalise_url(database_url))
        with engine.begin() as connection:
            connection.execute(text("UPDATE partners SET name = 'AirLink (old)' WHERE id = 'ptn_b'"))
            connection.execute(text("UPDATE partners SET name = 'AirLink CN' WHERE id = 'ptn_c'"))
            connection.execute(text("UPDATE partners SET name = 'Strasse Nord' WHERE id = 'ptn_f'"))
        engine.dispose()
        _migrate(database_url, "head")
        keys = dict(_query(database_url, "SELECT id, name_key FROM partners"))
        assert keys == {pid: name_key(name) for pid, name in (
            ("ptn_a", "AirLink"), ("ptn_b", "AirLink (old)"), ("ptn_c", "AirLink CN"), ("ptn_d", "BookMart"),
            ("ptn_e", "Straße"), ("ptn_f", "Strasse Nord"))}
    finally:
        engine = create_engine(normalise_url(database_url))
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM partners"))
        engine.dispose()
        _migrate(database_url, "head")  # the next test's database, also when this one fails


def test_0041_downgrades_and_upgrades_again(network, database_url):
    network.create_partner("AirLink")
    network.close()
    _migrate(database_url, "0040", down=True)
    try:
        assert _query(database_url, "SELECT id, name FROM partners")[0][1] == "AirLink"
    finally:
        _migrate(database_url, "head")
    assert _query(database_url, "SELECT name_key FROM partners") == [(name_key("AirLink"),)]
