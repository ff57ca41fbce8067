"""Write a DataFrame as a table under the warehouse: Delta via delta-rs, Spark Delta, or Parquet."""

from __future__ import annotations

from pyspark.sql import DataFrame

from services.core.settings import Settings
from spark.session import use_s3a


def table_uri(settings: Settings, name: str) -> str:
    return f"{settings.warehouse_uri.rstrip('/')}/{name}"


def storage_options(settings: Settings) -> dict[str, str]:
    """delta-rs options for an s3:// warehouse on a local endpoint."""
    if not settings.warehouse_uri.startswith("s3://") or not settings.aws_endpoint_url:
        return {}
    return {
        "AWS_ENDPOINT_URL": settings.aws_endpoint_url,
        "AWS_REGION": settings.aws_region,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_ALLOW_HTTP": "true",
        "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
    }


def write_table(df: DataFrame, settings: Settings, name: str) -> str:
    """Replace the table ``name`` with ``df``; return its location."""
    uri = table_uri(settings, name)
    if settings.table_writer == "delta-rs":
        from deltalake import write_deltalake

        write_deltalake(
            uri,
            df.toArrow(),
            mode="overwrite",
            schema_mode="overwrite",
            storage_options=storage_options(settings) or None,
        )
    elif settings.table_writer == "spark-delta":
        use_s3a(df.sparkSession, settings, uri)
        df.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(uri)
    else:
        use_s3a(df.sparkSession, settings, uri)
        df.write.mode("overwrite").parquet(uri)
    return uri
