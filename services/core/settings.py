"""The one settings module: every name derives from the user id, every endpoint lives here.

Values come from environment variables prefixed ``PINPIPE_`` (e.g. ``PINPIPE_USER_ID``).
Endpoints left unset are derived from the runtime: local services for ``native`` and
``compose``, ``None`` (the real AWS endpoint) for ``aws``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.core.errors import ConfigError

PROJECT_ROOT = Path(os.environ.get("PINPIPE_HOME", Path(__file__).resolve().parents[2]))
CONFIG_DIR = PROJECT_ROOT / "config"

DEFAULT_USER_ID = "1a2b3c4d5e6f"
TableName = Literal["pin", "geo", "user"]
TABLES: tuple[TableName, ...] = ("pin", "geo", "user")

Runtime = Literal["native", "compose", "aws"]

# The one Apache Kafka version of every runtime: the native jars (services/kafka/pom.xml), the
# compose image apache/kafka:<same> and the MSK line aws_deploy checks for.
KAFKA_VERSION = "4.1.2"
MSK_KAFKA_VERSION = "4.1.x.kraft"


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
    broker_controller_port: int = 9093
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

    # Native REST proxy only (the Confluent proxy has no such limit): the largest request
    # body it reads, API Gateway's own payload limit, so whatever passes the gateway passes.
    rest_proxy_max_body_bytes: int = 10 * 1024 * 1024

    # Jars from Maven Central (`make setup`): Kafka for the native broker and its tools, and
    # s3a + Delta for Spark. The broker's heap suits a 2-core machine.
    jars_dir: Path = PROJECT_ROOT / ".jars"
    broker_heap: str = "768m"

    # Source database admin (used only by the native stack to create the app user).
    mysql_admin_user: str = "root"
    mysql_admin_password: str = Field(default="", repr=False)
    mysql_install: bool = True

    seed: int = 42
    seed_posts: int = 11_000

    # Spark batch job. The reader "boto3" lists and GETs objects itself (works offline,
    # no s3a); "spark" uses Spark's own JSON reader on batch_source_root (s3a://, a
    # Unity Catalog volume, or a mount: the original's "mount" step is this setting).
    batch_reader: Literal["boto3", "spark"] = "boto3"
    batch_source_root: str = ""
    # Where cleaned tables and answers go: a local folder natively (LocalStack keeps no
    # S3 data across restarts), s3:// or a volume elsewhere.
    warehouse_uri: str = ""
    table_writer: Literal["delta-rs", "spark-delta", "parquet"] = "delta-rs"
    spark_master: str = "local[2]"
    spark_driver_memory: str = "2g"

    # Orchestration: the Airflow DAG <uid>_dag (services/orchestration). dag_runner picks the
    # operator that runs the batch job: "local" runs `pinpipe batch run` in the project venv;
    # "databricks" (MWAA) runs the deployed job <uid>-pinpipe-batch when its id is known,
    # else submits spark/jobs/batch_job.py as a one-off spark_python_task run.
    dag_runner: Literal["local", "databricks"] = "local"
    dag_retries: int = 2
    dag_retry_delay_minutes: float = 5.0
    # The sink writes all day long: no new object for this long means ingestion is broken.
    dag_freshness_hours: float = 24.0
    project_venv: Path = PROJECT_ROOT / ".venv"
    airflow_venv: Path = PROJECT_ROOT / ".venv-airflow"
    airflow_dags_folder: Path = PROJECT_ROOT / "airflow" / "dags"
    # Local standalone only: whether its scheduler creates the @daily runs itself. Off by
    # default, or every `make airflow` after midnight would start a Spark job unasked (the
    # latest daily run); triggered runs always run.
    airflow_scheduled_runs: bool = False
    databricks_conn_id: str = "databricks_default"
    # Set by the MWAA startup script that aws_deploy writes.
    databricks_batch_job_id: int | None = None
    # Without a job id: where spark/jobs/batch_job.py and pinpipe's wheel were uploaded
    # (/Workspace or /Volumes paths), and the cluster (empty: a new job cluster per run).
    databricks_python_file: str = ""
    databricks_wheel: str = ""
    databricks_cluster_id: str = ""
    # Runtime 17.3 LTS ships Spark 4.0, the minor version the project pins.
    databricks_spark_version: str = "17.3.x-scala2.13"
    databricks_node_type: str = "m5d.large"
    databricks_num_workers: int = 1

    # Streaming: the Spark Structured Streaming job (spark/jobs/streaming_job.py). The source
    # "native" is the project's own Kinesis reader (boto3, works offline); "databricks" is
    # the runtime's built-in kinesis format. An empty checkpoint root means
    # state_dir/checkpoints; a query's checkpoint is a folder under it.
    stream_source: Literal["native", "databricks"] = "native"
    stream_starting_position: Literal["TRIM_HORIZON", "LATEST"] = "TRIM_HORIZON"
    stream_trigger_seconds: float = 2.0
    stream_checkpoint_root: str = ""

    @property
    def quarantine_table(self) -> str:
        """Delta table of stream records that could not be decoded or keyed."""
        return f"{self.user_id}_quarantine_table"

    @property
    def batch_quarantine_table(self) -> str:
        """Delta table of the batch job's records that could not be parsed or keyed."""
        return f"{self.user_id}_batch_quarantine"

    @property
    def clean_tables(self) -> dict[str, str]:
        """The batch job's cleaned table per source table: ``<uid>_pin_clean`` ..."""
        return {t: f"{self.user_id}_{t}_clean" for t in TABLES}

    def answer_table(self, query: str) -> str:
        """The table of one of the eight answers: ``<uid>_q1_popular_category_by_country`` ..."""
        return f"{self.user_id}_{query}"

    @property
    def stream_query_name(self) -> str:
        """The streaming query's name (its checkpoints are folders named after it)."""
        return f"{self.user_id}-stream"

    @property
    def stream_name_pattern(self) -> str:
        """Every stream of this user: ``streaming-<uid>-*`` (the IAM resource pattern)."""
        return f"streaming-{self.user_id}-*"

    def databricks_job_name(self, kind: str) -> str:
        """``<uid>-pinpipe-batch`` / ``<uid>-pinpipe-streaming``."""
        return f"{self.user_id}-pinpipe-{kind}"

    @property
    def databricks_secret_scope(self) -> str:
        """The default secret scope for AWS keys on Databricks: ``<uid>-aws``."""
        return f"{self.user_id}-aws"

    @property
    def deploy_record_name(self) -> str:
        """The name of ``aws_deploy``'s record for this user and region."""
        return f"{self.user_id}-{self.aws_region}"

    @property
    def rest_proxy_bundle_name(self) -> str:
        """The folder ``aws_deploy`` writes the EC2 REST proxy's install bundle to."""
        return f"rest-proxy-{self.user_id}"

    @property
    def checkpoint_root(self) -> str:
        return self.stream_checkpoint_root or str(self.state_dir / "checkpoints")

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
        if not self.warehouse_uri:
            self.warehouse_uri = str(self.state_dir / "warehouse")
        return self

    # ---- names (the contract's table) -------------------------------------------------
    @property
    def topics(self) -> dict[str, str]:
        """Kafka topic per table: ``<uid>.pin``, ``<uid>.geo``, ``<uid>.user``."""
        return {t: f"{self.user_id}.{t}" for t in TABLES}

    @property
    def topics_regex(self) -> str:
        """The connector's ``topics.regex``: ``<uid>\\..*`` (user ``abc`` does not read ``abcd.pin``)."""
        return rf"{self.user_id}\..*"

    @property
    def topics_glob(self) -> str:
        """The topics as an IAM resource wildcard: ``<uid>.*`` (there ``.`` is a plain dot)."""
        return f"{self.user_id}.*"

    @property
    def bucket(self) -> str:
        return f"user-{self.user_id}-bucket"

    @property
    def source_root(self) -> str:
        """Where the spark reader finds the sink's layout: the setting, else ``s3a://<bucket>``."""
        return self.batch_source_root or f"s3a://{self.bucket}"

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
    def kafka_jars(self) -> Path:
        return self.jars_dir / "kafka"

    @property
    def spark_jars(self) -> Path:
        return self.jars_dir / "spark"

    @property
    def kafka_log_dir(self) -> Path:
        """The native broker's log (topics, offsets, KRaft metadata), kept across restarts."""
        return self.state_dir / "kafka" / "data"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def reports_dir(self) -> Path:
        return self.state_dir / "reports"

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


def settings_with(overrides: Mapping[str, object]) -> Settings:
    """Settings from the environment, with each override that is not None (a job's flags)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
