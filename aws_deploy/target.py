"""Where ``make deploy-aws`` deploys: one typed target, from ``aws-target.yaml`` and ``PINPIPE_AWS_*``.

Environment variables win over the file; nested keys use ``__`` (``PINPIPE_AWS_MSK__CLUSTER_ARN``).
Credentials are never read from the file: AWS calls use the standard credential chain and
Databricks its own unified auth (``DATABRICKS_*`` variables or a ``~/.databrickscfg``
profile). The only secrets this model holds (keys for a Databricks secret scope) come from
the environment and are ``SecretStr``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from aws_deploy.wheel import RUNTIME_REQUIREMENTS
from services.core.errors import ConfigError
from services.core.settings import PROJECT_ROOT, Settings

DEFAULT_TARGET_FILE = PROJECT_ROOT / "aws-target.yaml"
ENV_PREFIX = "PINPIPE_AWS_"

# The Confluent S3 sink the original project downloads on the EC2 client.
CONFLUENT_S3_SINK_URL = (
    "https://d2p6pa21dvn84.cloudfront.net/api/plugins/confluentinc/kafka-connect-s3/"
    "versions/10.5.13/confluentinc-kafka-connect-s3-10.5.13.zip"
)

Region = Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")]
RoleArn = Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")]
ClusterArn = Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:kafka:[a-z0-9-]+:\d{12}:cluster/.+$")]
SubnetId = Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]
SecurityGroupId = Annotated[str, Field(pattern=r"^sg-[0-9a-f]{8,17}$")]

# Keys that would put a credential in a file; refused wherever they appear.
_CREDENTIAL_KEY = re.compile(
    r"(access_key_id|secret_access_key|session_token|token|password|client_secret)$", re.IGNORECASE
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RolesTarget(_Section):
    """IAM roles the original account provides (defaults follow its naming)."""

    ec2_access_role_arn: RoleArn | None = None
    kinesis_access_role_arn: RoleArn | None = None


class MskTarget(_Section):
    """The IAM-authenticated MSK cluster and how topics are made on it."""

    cluster_arn: ClusterArn | None = None
    topic_partitions: int = Field(default=1, ge=1)
    replication_factor: int = Field(default=3, ge=1)
    # "api": MSK's topic API (Kafka >= 3.6.0, no broker access needed); "admin-client": a
    # Kafka admin client with IAM auth (needs network access to the brokers); "auto" picks.
    topic_management: Literal["auto", "api", "admin-client"] = "auto"
    # The local runtimes run one Kafka line (MSK_KAFKA_VERSION); a provisioned cluster on
    # another is reported by plan, and upgraded to it only when this is true (MSK takes
    # 30 minutes or more, broker by broker).
    upgrade_kafka: bool = False


class MskConnectTarget(_Section):
    """The Confluent S3 sink on MSK Connect."""

    plugin_bucket: str | None = None
    plugin_key: str = "kafka-connect-s3/confluentinc-kafka-connect-s3-10.5.13.zip"
    # A local zip, or the URL it is downloaded from when the bucket lacks it.
    plugin_source: str = CONFLUENT_S3_SINK_URL
    kafka_connect_version: str = "2.7.1"
    mcu_count: Literal[1, 2, 4, 8] = 1
    worker_count: int = Field(default=1, ge=1, le=10)
    # Empty: the cluster's own client subnets and security groups.
    subnets: list[SubnetId] = []
    security_groups: list[SecurityGroupId] = []
    running_timeout_seconds: int = Field(default=1800, ge=1)


class RestProxyTarget(_Section):
    """The EC2 client that runs the Confluent REST proxy."""

    public_dns: str | None = None
    port: int = Field(default=8082, ge=1, le=65535)
    confluent_home: str = "/home/ec2-user/confluent-7.2.0"
    ssh_user: str = "ec2-user"
    ssh_key_file: str = "~/.ssh/<user_id>.pem"
    # When set, the proxy is installed through SSM Run Command instead of printed commands.
    ssm_instance_id: Annotated[str, Field(pattern=r"^i-[0-9a-f]{8,17}$")] | None = None


class ApiGatewayTarget(_Section):
    """The REST API (defaults: the settings' API name and stage)."""

    name: str | None = None
    stage: str | None = None


class KinesisTarget(_Section):
    """The three Kinesis data streams."""

    mode: Literal["PROVISIONED", "ON_DEMAND"] = "PROVISIONED"
    shards: int = Field(default=1, ge=1)


class MwaaTarget(_Section):
    """The MWAA environment that schedules the Databricks jobs."""

    environment: str | None = None
    # Default: the environment's own source bucket.
    dags_bucket: str | None = None
    manage_requirements: bool = True
    # The Databricks provider, and what the DAG's project modules import beyond Airflow.
    requirements: list[str] = ["apache-airflow-providers-databricks", *RUNTIME_REQUIREMENTS]
    # The startup script exports the settings the DAG reads (PINPIPE_DAG_RUNNER=databricks,
    # the job id, the warehouse); dag_env adds to or overrides them. One script serves the
    # whole environment: turn this off where the environment is shared with other users.
    manage_startup_script: bool = True
    dag_env: dict[str, str] = {}


class DatabricksTarget(_Section):
    """The Databricks workspace that runs the Spark jobs."""

    host: Annotated[str, Field(pattern=r"^https?://[^\s/]+/?$")] | None = None
    profile: str | None = None
    # A Unity Catalog volume (/Volumes/<catalog>/<schema>/<volume>/...) or a workspace folder.
    artifacts_path: Annotated[str, Field(pattern=r"^/(Volumes|Workspace)/.+")] = (
        "/Workspace/Shared/pinpipe"
    )
    warehouse: str | None = None
    # Compute: an existing cluster, or a job cluster of this shape.
    existing_cluster_id: str | None = None
    spark_version: str = "17.3.x-scala2.13"
    node_type_id: str = "m5d.large"
    num_workers: int = Field(default=1, ge=0)
    # How the jobs reach S3 and Kinesis: no credentials in code and no DBFS mount.
    aws_access: Literal["external_location", "instance_profile", "secret_scope"] = (
        "external_location"
    )
    instance_profile_arn: str | None = None
    secret_scope: str | None = None
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    batch_parameters: list[str] | None = None
    streaming_parameters: list[str] | None = None


class AwsTarget(BaseSettings):
    """Every value the deploy needs that the user id cannot derive."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    user_id: str | None = None
    region: Region = "us-east-1"
    account_id: Annotated[str, Field(pattern=r"^\d{12}$")] | None = None
    bucket: str | None = None
    roles: RolesTarget = RolesTarget()
    msk: MskTarget = MskTarget()
    msk_connect: MskConnectTarget = MskConnectTarget()
    rest_proxy: RestProxyTarget = RestProxyTarget()
    api_gateway: ApiGatewayTarget = ApiGatewayTarget()
    kinesis: KinesisTarget = KinesisTarget()
    mwaa: MwaaTarget = MwaaTarget()
    databricks: DatabricksTarget = DatabricksTarget()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's content arrives as init values; the environment overrides it.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _secret_scope_needs_keys(self) -> AwsTarget:
        db = self.databricks
        if db.aws_access == "instance_profile" and not db.instance_profile_arn:
            raise ValueError("databricks.instance_profile_arn is required for instance_profile")
        if db.aws_access == "secret_scope" and not (
            db.aws_access_key_id and db.aws_secret_access_key
        ):
            raise ValueError(
                "databricks.aws_access=secret_scope needs PINPIPE_AWS_DATABRICKS__AWS_ACCESS_KEY_ID"
                " and PINPIPE_AWS_DATABRICKS__AWS_SECRET_ACCESS_KEY in the environment"
            )
        return self

    def settings(self, account_id: str, endpoint_url: str | None = None) -> Settings:
        """The project's settings for this target: every name derives from the user id."""
        overrides: dict[str, Any] = {
            "runtime": "aws",
            "aws_region": self.region,
            "aws_account_id": account_id,
            "aws_endpoint_url": endpoint_url,
        }
        if self.user_id:
            overrides["user_id"] = self.user_id
        if self.api_gateway.name:
            overrides["api_name"] = self.api_gateway.name
        if self.api_gateway.stage:
            overrides["api_stage"] = self.api_gateway.stage
        try:
            return Settings(**overrides)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ConfigError(f"user_id: {err['msg']} (or PINPIPE_USER_ID)") from None


def _credential_keys(data: Any, path: str = "") -> list[str]:
    if not isinstance(data, dict):
        return []
    found = []
    for key, value in data.items():
        where = f"{path}{key}"
        if _CREDENTIAL_KEY.search(str(key)):
            found.append(where)
        found += _credential_keys(value, f"{where}.")
    return found


def _env_name(loc: tuple[int | str, ...]) -> str:
    return ENV_PREFIX + "__".join(str(p).upper() for p in loc)


def load_target(path: Path | None = None) -> AwsTarget:
    """Read the target file and ``PINPIPE_AWS_*``; every problem on its own line.

    Without a path, ``aws-target.yaml`` is read when present (else the environment alone).
    """
    if path is not None and not path.is_file():
        raise ConfigError(f"{path}: target file not found (copy aws-target.example.yaml)")
    path = path or DEFAULT_TARGET_FILE
    data: dict[str, Any] = {}
    if path.exists():
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{path}: not valid YAML{where}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of target settings")
        data = loaded or {}
    leaked = _credential_keys(data)
    if leaked:
        raise ConfigError(
            "\n".join(
                f"{path}: {key}: credentials are never read from files; use the AWS credential "
                "chain, Databricks auth, or the environment variable"
                for key in leaked
            )
        )
    try:
        return AwsTarget(**data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            key = ".".join(str(p) for p in loc) or "target"
            hint = f" (or {_env_name(loc)})" if loc else ""
            lines.append(f"{path.name}: {key}: {err['msg']}{hint}")
        raise ConfigError("\n".join(lines)) from None
