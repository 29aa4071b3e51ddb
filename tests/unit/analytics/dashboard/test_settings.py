"""DashboardSettings: the login it reads as, the health URL template, one-line errors."""

from __future__ import annotations

import pytest

from analytics.dashboard.status import health_url
from shared.errors import SettingsError
from shared.services import by_name
from shared.settings import DashboardSettings, HealthSettings, PostgresSettings, build


def test_it_reads_as_the_reader_unless_told_otherwise() -> None:
    postgres = PostgresSettings(reader_user="ro", writer_user="rw")
    assert DashboardSettings().login(postgres).user == "ro"
    assert DashboardSettings(read_as="writer").login(postgres).user == "rw"


def test_the_reader_password_is_the_reader_setting_and_stays_secret() -> None:
    postgres = PostgresSettings(reader_password="s3cret")
    login = DashboardSettings().login(postgres)
    assert login.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(login) and "s3cret" not in login.describe()


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("DASHBOARD_PORT", "not-a-port", "invalid setting DASHBOARD_PORT"),
        ("DASHBOARD_READ_AS", "owner", "invalid setting DASHBOARD_READ_AS"),
        ("DASHBOARD_HEALTH_URL", "http://127.0.0.1/healthz", "{port}"),
        ("DASHBOARD_REFRESH_S", "0", "invalid setting DASHBOARD_REFRESH_S"),
    ],
)
def test_a_wrong_setting_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=r"^invalid setting DASHBOARD_") as error:
        build(DashboardSettings)
    assert says in str(error.value) and "\n" not in str(error.value)


def test_the_health_panel_asks_each_service_where_it_serves() -> None:
    relay = by_name("analytics.alert_relay")
    health = HealthSettings(base_port=18080)
    assert health_url(DashboardSettings().health_url, relay, health) == (
        "http://127.0.0.1:18120/healthz"
    )
    # compose: every service is its own host, named like its compose service.
    assert health_url("http://{name}:{port}/healthz", relay, health) == (
        "http://analytics-alert_relay:18120/healthz"
    )
