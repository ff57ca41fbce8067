"""The source database on MySQL 8 (the compose image), provisioned and seeded by the project.

Natively the stack runs MariaDB; compose runs mysql:8.4 with caching_sha2_password and
LOAD DATA LOCAL off unless enabled. This runs the native provisioning code (database, user,
tables, bulk seed) against the real server compose starts.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from services.core.settings import Settings
from services.source_db.database import SourceDatabase
from services.stack.mysql_server import MySQLService
from tests.compose.conftest import compose_image

pytestmark = pytest.mark.docker

POSTS = 500


@pytest.fixture(scope="module")
def mysql8() -> Iterator[tuple[str, int, str]]:
    from testcontainers.community.mysql import MySqlContainer

    root_password = secrets.token_hex(8)
    # The same server flag as the compose service: the seeder's bulk path.
    container = MySqlContainer(
        compose_image("mysql"), root_password=root_password, dialect="pymysql"
    ).with_command("--local-infile=1")
    with container:
        yield (
            container.get_container_host_ip(),
            int(container.get_exposed_port(3306)),
            root_password,
        )


def test_the_native_provisioning_creates_user_and_tables_and_seeds_deterministically(
    mysql8: tuple[str, int, str], tmp_path: Path
) -> None:
    host, port, root_password = mysql8
    creds_file = tmp_path / "db_creds.yaml"
    creds_file.write_text(
        yaml.safe_dump(
            {"HOST": host, "PORT": port, "USER": "pinpipe", "PASSWORD": secrets.token_hex(8)}
        )
    )
    settings = Settings(
        db_creds_file=creds_file,
        mysql_admin_user="root",
        mysql_admin_password=root_password,
        seed_posts=POSTS,
        seed=7,
    )
    creds = settings.db
    MySQLService(settings).provision()  # what `python -m services.stack.compose_init db` runs

    db = SourceDatabase.connect(creds)
    try:
        counts = db.counts()
        assert counts == {"pinterest_data": POSTS, "geolocation_data": POSTS, "user_data": POSTS}
        _, dirt = db.profile()
        assert any(r.column == "follower_count" and r.count > 0 for r in dirt)
        first = (
            db.engine.connect()
            .exec_driver_sql("SELECT unique_id FROM pinterest_data ORDER BY `index` LIMIT 3")
            .fetchall()
        )
        # Seeding again with the same seed gives the same rows: idempotent and deterministic.
        db.seed(POSTS, 7)
        again = (
            db.engine.connect()
            .exec_driver_sql("SELECT unique_id FROM pinterest_data ORDER BY `index` LIMIT 3")
            .fetchall()
        )
        assert first == again
        # A second provisioning leaves seeded tables alone.
        MySQLService(settings).provision()
        assert db.counts() == counts
    finally:
        db.engine.dispose()
