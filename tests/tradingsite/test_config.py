from pathlib import Path

import pytest

from tradingsite.config import ConfigError, database_config, parse_csv

BASE = Path("/srv/app")


def test_no_url_means_sqlite_in_the_project_folder() -> None:
    config = database_config("", base_dir=BASE, persistent=False)
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == "/srv/app/db.sqlite3"


def test_absolute_sqlite_paths_stay_absolute() -> None:
    assert (
        database_config("sqlite:////tmp/x.db", base_dir=BASE, persistent=False)["NAME"]
        == "/tmp/x.db"
    )


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://user:p%40ss@db.example:6543/trading",
        "postgres://user:p%40ss@db.example:6543/trading",
        "postgresql+asyncpg://user:p%40ss@db.example:6543/trading",  # the seed's form
        "postgresql+psycopg://user:p%40ss@db.example:6543/trading",
    ],
)
def test_every_postgres_url_form_gives_the_same_connection(url: str) -> None:
    config = database_config(url, base_dir=BASE, persistent=False)
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["NAME"], config["USER"], config["PASSWORD"]) == ("trading", "user", "p@ss")
    assert (config["HOST"], config["PORT"]) == ("db.example", "6543")
    assert config["CONN_HEALTH_CHECKS"] is True
    assert config["OPTIONS"]["connect_timeout"] == 2


def test_production_keeps_health_checked_connections_per_request_thread() -> None:
    config = database_config("postgresql://u@h/db", base_dir=BASE, persistent=True)
    assert "pool" not in config["OPTIONS"]
    assert config["CONN_MAX_AGE"] == 300 and config["CONN_HEALTH_CHECKS"] is True
    assert (
        database_config("postgresql://u@h/db", base_dir=BASE, persistent=False)["CONN_MAX_AGE"] == 0
    )


def test_an_unknown_scheme_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        database_config("mysql://u@h/db", base_dir=BASE, persistent=False)


def test_a_postgres_url_without_database_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="database name"):
        database_config("postgresql://u@h:5432/", base_dir=BASE, persistent=False)


def test_csv_lists_drop_blanks() -> None:
    assert parse_csv(" a, b,,c ,") == ["a", "b", "c"]
