"""Source database: a MySQL/MariaDB server already listening, or a project-local MariaDB.

If a server answers at the configured host and port it is used as it is (and never
stopped by ``stack down``). Otherwise Debian's ``mariadb-server`` is installed if needed
and a server with its data under the state directory is started and owned by the stack.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError, ProgrammingError

from services.core.errors import ConfigError, PrerequisiteError, ServiceStartError
from services.source_db.database import SourceDatabase, make_engine
from services.stack.base import NativeService, ServiceStatus
from services.stack.process import port_open, port_owner

LOCAL_HOSTS = {"127.0.0.1", "localhost"}


class MySQLService(NativeService):
    name = "mysql"
    port_setting = "PORT in db_creds.yaml"
    startup_timeout = 60.0
    stop_timeout = 30.0

    @property
    def port(self) -> int:
        return self.settings.db.PORT

    @property
    def datadir(self) -> Path:
        return self.settings.state_dir / "mysql" / "data"

    @property
    def socket(self) -> Path:
        return self.settings.state_dir / "mysql" / "mysqld.sock"

    def endpoint(self) -> str:
        db = self.settings.db
        return f"mysql://{db.HOST}:{db.PORT}/{db.DATABASE}"

    def healthy(self) -> bool:
        return port_open(self.settings.db.HOST, self.port)

    def up(self) -> str:
        db = self.settings.db
        if self.healthy():
            self.provision()
            return "already running" if self.proc.pid else "using the server already listening"
        if db.HOST not in LOCAL_HOSTS:
            raise PrerequisiteError(
                f"MySQL at {db.HOST}:{db.PORT} (from {self.settings.db_creds_file.name}) is not "
                "reachable: start it or point HOST/PORT at a running server."
            )
        return super().up()

    def check_prerequisites(self) -> None:
        if shutil.which("mariadbd") or Path("/usr/sbin/mariadbd").exists():
            return
        if not self.settings.mysql_install:
            raise PrerequisiteError(
                "No MySQL server is listening and mariadbd is not installed: install "
                "mariadb-server or start a MySQL server at the configured HOST/PORT."
            )
        if not shutil.which("apt-get"):
            raise PrerequisiteError(
                "No MySQL server is listening and apt-get is unavailable: install MariaDB or "
                "MySQL and start it at the configured HOST/PORT."
            )
        result = subprocess.run(
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
            "mariadb-server",
            shell=True,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise PrerequisiteError(
                "Installing mariadb-server with apt-get failed (run it as root, or start a "
                f"MySQL server yourself): {result.stderr.strip().splitlines()[-1:]}"
            )

    @staticmethod
    def _binary(name: str) -> str:
        found = shutil.which(name)
        if found:
            return found
        sbin = Path("/usr/sbin") / name
        return str(sbin) if sbin.exists() else str(Path("/usr/bin") / name)

    def launch(self) -> None:
        if not (self.datadir / "mysql").exists():
            self.datadir.mkdir(parents=True, exist_ok=True)
            init = subprocess.run(
                [
                    self._binary("mariadb-install-db"),
                    "--no-defaults",
                    f"--datadir={self.datadir}",
                    "--user=root",
                    "--skip-test-db",
                    "--auth-root-authentication-method=normal",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if init.returncode != 0:
                raise ServiceStartError(self.name, "mariadb-install-db failed", init.stderr[-2000:])
        self.proc.start(
            [
                self._binary("mariadbd"),
                "--no-defaults",
                f"--datadir={self.datadir}",
                f"--socket={self.socket}",
                f"--port={self.port}",
                f"--bind-address={self.settings.bind_host}",
                "--user=root",
                "--local-infile=1",
                "--skip-log-bin",
            ]
        )

    def _admin_url(self) -> str:
        s = self.settings
        if self.proc.pid is not None:
            return URL.create(
                "mysql+pymysql", username="root", query={"unix_socket": str(self.socket)}
            ).render_as_string(hide_password=False)
        return URL.create(
            "mysql+pymysql",
            username=s.mysql_admin_user,
            password=s.mysql_admin_password,
            host=s.db.HOST,
            port=s.db.PORT,
        ).render_as_string(hide_password=False)

    def _app_can_connect(self) -> bool:
        try:
            with make_engine(self.settings.db).connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except (OperationalError, ProgrammingError):
            return False

    def ensure_database_and_user(self) -> None:
        """Create the database and the application user (idempotent)."""
        if self._app_can_connect():
            return
        db = self.settings.db
        engine = create_engine(self._admin_url())
        try:
            with engine.begin() as conn:
                conn.execute(
                    text(f"CREATE DATABASE IF NOT EXISTS `{db.DATABASE}` CHARACTER SET utf8mb4")
                )
                for host in ("localhost", "%"):
                    conn.execute(
                        text(f"CREATE USER IF NOT EXISTS '{db.USER}'@'{host}' IDENTIFIED BY :pw"),
                        {"pw": db.PASSWORD},
                    )
                    conn.execute(
                        text(f"ALTER USER '{db.USER}'@'{host}' IDENTIFIED BY :pw"),
                        {"pw": db.PASSWORD},
                    )
                    conn.execute(
                        text(f"GRANT ALL PRIVILEGES ON `{db.DATABASE}`.* TO '{db.USER}'@'{host}'")
                    )
        except OperationalError as exc:
            raise ConfigError(
                f"Cannot log in to MySQL as {self.settings.mysql_admin_user} to create database "
                f"{db.DATABASE} and user {db.USER}: set PINPIPE_MYSQL_ADMIN_USER/"
                "PINPIPE_MYSQL_ADMIN_PASSWORD, or create them yourself."
            ) from exc
        finally:
            engine.dispose()

    def provision(self) -> None:
        """Database, user and tables; seed the default dataset if the tables are empty."""
        self.ensure_database_and_user()
        source = SourceDatabase.connect(self.settings.db)
        try:
            source.create_tables()
            if source.is_empty():
                source.seed(self.settings.seed_posts, self.settings.seed)
        finally:
            source.engine.dispose()

    def status(self) -> ServiceStatus:
        up = self.healthy()
        own = self.proc.pid
        owner = port_owner(self.port) if up and own is None else None
        return ServiceStatus(
            self.name,
            "up" if up else "down",
            self.endpoint(),
            own or (owner.pid if owner else None),
            own is not None,
            "" if own or not up else "external server (left running by stack down)",
        )
