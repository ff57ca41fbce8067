"""The one settings module: every name derives from the user id, every endpoint lives here.

Values come from environment variables prefixed ``PINPIPE_`` (e.g. ``PINPIPE_USER_ID``).
Endpoints left unset are derived from the runtime: local services for ``native`` and
``compose``, ``None`` (the real AWS endpoint) for ``aws``.
"""

from __future__ import annotations

import json
import os
import re
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.errors import ConfigError

PROJECT_ROOT = Path(os.environ.get("PINPIPE_HOME", Path(__file__).resolve().parent.parent))
CONFIG_DIR = PROJECT_ROOT / "config"

DEFAULT_USER_ID = "1a2b3c4d5e6f"
TABLES = ("pin", "geo", "user")
SOURCE_TABLES = {"pin": "pinterest_data", "geo": "geolocation_data", "user": "user_data"}

Runtime = Literal["native", "compose", "aws"]


class DbCredentials(BaseModel):
    """Database credentials with the original project's keys."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    HOST: str
    USER: str
    PASSWORD: str = Field(repr=False)
    DATABASE: str = "pinterest_data"
    PORT: int = 3306

    def sqlalchemy_url(self, database: str | None = None) -> str:
        """SQLAlchemy URL for PyMySQL; ``database=""`` connects without selecting one."""
        from sqlalchemy.engine import URL

        db = self.DATABASE if database is None else database
        return URL.create(
            "mysql+pymysql",
            username=self.USER,
            password=self.PASSWORD,
            host=self.HOST,
            port=self.PORT,
            database=db or None,
            query={"charset": "utf8mb4"},
        ).render_as_string(hide_password=False)


CRED_KEYS = ("HOST", "USER", "PASSWORD", "DATABASE", "PORT")


def load_db_credentials(path: Path, environ: dict[str, str] | None = None) -> DbCredentials:
    """Read ``db_creds.yaml``; keys it lacks fall back to ``PINPIPE_DB_<KEY>`` variables.

    Raises ConfigError with one line naming the file and the key at fault.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if path.exists():
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{path}: not valid YAML{where}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of {', '.join(CRED_KEYS)}")
        unknown = sorted(set(map(str, loaded)) - set(CRED_KEYS))
        if unknown:
            raise ConfigError(f"{path}: unknown key {unknown[0]} (expected {', '.join(CRED_KEYS)})")
        values.update({k: v for k, v in loaded.items() if v is not None})
    for key in CRED_KEYS:
        if key not in values and f"PINPIPE_DB_{key}" in env:
            values[key] = env[f"PINPIPE_DB_{key}"]
    for key in ("HOST", "USER", "PASSWORD"):
        if key not in values:
            if path.exists():
                raise ConfigError(f"{path}: missing key {key} (nor is PINPIPE_DB_{key} set)")
            raise ConfigError(
                f"{path}: file not found and PINPIPE_DB_{key} is not set "
                f"(copy db_creds.example.yaml to {path.name})"
            )
    try:
        return DbCredentials.model_validate(
            {k: (str(v) if k != "PORT" else v) for k, v in values.items()}
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{path}: key {key}: {err['msg']}") from None


class Settings(BaseSettings):
    """Every name and endpoint of the pipeline, derived from one user id."""

    model_config = SettingsConfigDict(env_prefix="PINPIPE_", extra="ignore")

    user_id: str = DEFAULT_USER_ID
    runtime: Runtime = "native"
    aws_region: str = "us-east-1"
    aws_account_id: str = "000000000000"

    state_dir: Path = PROJECT_ROOT / ".pinpipe"
    db_creds_file: Path = PROJECT_ROOT / "db_creds.yaml"

    # Native service ports (all bound to 127.0.0.1).
    bind_host: str = "127.0.0.1"
    broker_port: int = 9092
    localstack_port: int = 4566
    rest_proxy_port: int = 8082
    airflow_port: int = 8080

    # Endpoints: empty means "derive from the runtime"; the aws runtime derives None.
    aws_endpoint_url: str | None = ""
    kafka_bootstrap_servers: str = ""
    rest_proxy_url: str = ""
    api_invoke_url: str | None = ""

    topic_partitions: int = 1
    stream_shards: int = 1
    api_name: str = ""
    api_stage: str = "test"

    # Source database admin (used only by the native stack to create the app user).
    mysql_admin_user: str = "root"
    mysql_admin_password: str = Field(default="", repr=False)
    mysql_install: bool = True

    seed: int = 42
    seed_posts: int = 11_000

    @field_validator("user_id")
    @classmethod
    def _valid_user_id(cls, v: str) -> str:
        # Topic, bucket and stream names all embed it: keep to what S3 bucket names accept.
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{2,40}", v):
            raise ValueError("user id must be 3-41 lowercase letters, digits or '-'")
        return v

    @model_validator(mode="after")
    def _derive_endpoints(self) -> Settings:
        local = self.runtime != "aws"
        host = self.bind_host
        if self.aws_endpoint_url == "":
            self.aws_endpoint_url = f"http://{host}:{self.localstack_port}" if local else None
        if not self.kafka_bootstrap_servers:
            self.kafka_bootstrap_servers = f"{host}:{self.broker_port}"
        if not self.rest_proxy_url:
            self.rest_proxy_url = f"http://{host}:{self.rest_proxy_port}"
        if not self.api_name:
            self.api_name = f"{self.user_id}-pinterest-api"
        self.state_dir = self.state_dir.resolve()
        return self

    # ---- names (the contract's table) -------------------------------------------------
    @property
    def topics(self) -> dict[str, str]:
        """Kafka topic per table: ``<uid>.pin``, ``<uid>.geo``, ``<uid>.user``."""
        return {t: f"{self.user_id}.{t}" for t in TABLES}

    @property
    def topics_regex(self) -> str:
        return f"{self.user_id}.*"

    @property
    def bucket(self) -> str:
        return f"user-{self.user_id}-bucket"

    @property
    def streams(self) -> dict[str, str]:
        """Kinesis stream per table: ``streaming-<uid>-pin`` ..."""
        return {t: f"streaming-{self.user_id}-{t}" for t in TABLES}

    @property
    def delta_tables(self) -> dict[str, str]:
        return {t: f"{self.user_id}_{t}_table" for t in TABLES}

    @property
    def msk_plugin_name(self) -> str:
        return f"{self.user_id}-plugin"

    @property
    def connector_name(self) -> str:
        return f"{self.user_id}-connector"

    @property
    def ec2_access_role(self) -> str:
        return f"{self.user_id}-ec2-access-role"

    @property
    def kinesis_access_role(self) -> str:
        return f"{self.user_id}-kinesis-access-role"

    @property
    def kinesis_role_arn(self) -> str:
        return f"arn:aws:iam::{self.aws_account_id}:role/{self.kinesis_access_role}"

    @property
    def dag_id(self) -> str:
        return f"{self.user_id}_dag"

    @property
    def dag_file(self) -> str:
        return f"{self.dag_id}.py"

    # ---- credentials and local state ----------------------------------------------------
    @cached_property
    def db(self) -> DbCredentials:
        """Database credentials from ``db_creds.yaml`` (or ``PINPIPE_DB_*``)."""
        return load_db_credentials(self.db_creds_file)

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def pids_dir(self) -> Path:
        return self.state_dir / "pids"

    @property
    def stack_state_file(self) -> Path:
        return self.state_dir / "stack.json"

    def stack_state(self) -> dict[str, Any]:
        """What ``stack up`` recorded (e.g. the API id); empty when the stack never ran."""
        try:
            return dict(json.loads(self.stack_state_file.read_text()))
        except (FileNotFoundError, ValueError):
            return {}

    def resolved_api_invoke_url(self) -> str | None:
        """The API Gateway invoke URL: configured, or recorded by ``stack up``."""
        if self.api_invoke_url:
            return self.api_invoke_url
        return self.stack_state().get("api_invoke_url")

    def boto3_kwargs(self) -> dict[str, Any]:
        """Arguments for ``boto3.client``: the local endpoint and test credentials, or AWS."""
        kwargs: dict[str, Any] = {"region_name": self.aws_region}
        if self.aws_endpoint_url:
            kwargs["endpoint_url"] = self.aws_endpoint_url
            kwargs["aws_access_key_id"] = os.environ.get("AWS_ACCESS_KEY_ID", "test")
            kwargs["aws_secret_access_key"] = os.environ.get("AWS_SECRET_ACCESS_KEY", "test")
        return kwargs


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
