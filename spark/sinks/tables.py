"""Write a DataFrame as a table under the warehouse: Delta via delta-rs, Spark Delta, or Parquet."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from services.core.settings import Settings
from spark.session import use_s3a

if TYPE_CHECKING:
    import pyarrow as pa


_FRAME: Final = "_frame"


def collect_arrow(frames: Mapping[str, DataFrame]) -> dict[str, pa.Table]:
    """Every frame's rows as Arrow, from one Spark job instead of one per frame.

    The frames go into one union, each with its columns renamed apart (null in the other
    frames' rows), so one collect computes them all, their independent stages side by side.
    A small frame's job costs more in scheduling than in work, which is what this saves.
    Each frame comes back as ``toArrow`` would give it: its rows in order, its schema.
    """
    if len(frames) < 2:
        return {name: df.toArrow() for name, df in frames.items()}
    return ArrowUnion(frames).collect()


class ArrowUnion:
    """``collect_arrow``'s union of some frames, and how its rows split back into theirs.

    ``collect`` can be given another DataFrame with the union's plan (its leaves' data
    replaced), so that a plan built once collects again without being built again.
    """

    def __init__(self, frames: Mapping[str, DataFrame]) -> None:
        from pyspark.sql.pandas.types import to_arrow_schema

        self.names = {name: df.columns for name, df in frames.items()}
        self.columns = {
            name: [f"_{i}_{c}" for c in columns]
            for i, (name, columns) in enumerate(self.names.items())
        }
        # Renamed in one call (toDF), not column by column: each Column is a round trip.
        tagged = [
            df.toDF(*self.columns[name]).withColumn(_FRAME, F.lit(i))
            for i, (name, df) in enumerate(frames.items())
        ]
        union = tagged[0]
        for df in tagged[1:]:
            union = union.unionByName(df, allowMissingColumns=True)
        self.union = union
        large = union.sparkSession.conf.get("spark.sql.execution.arrow.useLargeVarTypes")
        self.schemas = {
            name: to_arrow_schema(
                df.schema,
                error_on_duplicated_field_names_in_struct=True,
                prefers_large_types=large == "true",
            )
            for name, df in frames.items()
        }

    def collect(self, union: DataFrame | None = None) -> dict[str, pa.Table]:
        rows = (self.union if union is None else union).toArrow()
        # A union's partitions are its inputs' in order, and a collect keeps partition order:
        # each frame's rows are one run of its tag.
        tags = rows.column(_FRAME).to_numpy()
        if len(tags) > 1 and (tags[1:] < tags[:-1]).any():
            raise AssertionError("a union's rows came back out of their frames' order")
        starts = tags.searchsorted(range(len(self.names) + 1))
        collected: dict[str, pa.Table] = {}
        for i, name in enumerate(self.names):
            part = rows.slice(starts[i], starts[i + 1] - starts[i]).select(self.columns[name])
            collected[name] = part.rename_columns(self.names[name]).cast(self.schemas[name])
        return collected


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


def write_table(df: DataFrame | pa.Table, settings: Settings, name: str) -> str:
    """Replace the table ``name`` with ``df``; return its location.

    ``df`` may be rows already collected as Arrow (the delta-rs writer only): a job that
    needs a table's rows anyway collects them once.
    """
    uri = table_uri(settings, name)
    if not isinstance(df, DataFrame) and settings.table_writer != "delta-rs":
        raise TypeError(f"the {settings.table_writer} writer writes Spark DataFrames, not Arrow")
    if settings.table_writer == "delta-rs":
        from deltalake import write_deltalake

        write_deltalake(
            uri,
            df.toArrow() if isinstance(df, DataFrame) else df,
            mode="overwrite",
            schema_mode="overwrite",
            storage_options=storage_options(settings) or None,
        )
    elif settings.table_writer == "spark-delta":
        assert isinstance(df, DataFrame)
        use_s3a(df.sparkSession, settings, uri)
        df.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(uri)
    else:
        assert isinstance(df, DataFrame)
        use_s3a(df.sparkSession, settings, uri)
        df.write.mode("overwrite").parquet(uri)
    return uri


def read_delta(
    uri: str,
    storage: dict[str, str] | None = None,
    columns: list[str] | None = None,
    where: str = "",
) -> pa.Table | None:
    """The Delta table at ``uri`` (None before it exists), read with delta-rs' own engine.

    DataFusion (``QueryBuilder``), not ``DeltaTable.to_pyarrow_table``/``_dataset``: a process
    that read through the pyarrow dataset aborts at exit one time in three or so ("terminate
    called without an active exception", delta-rs #2184), which failed `pinpipe trace`.
    ``where`` is a SQL condition over the table's columns, built by the caller from typed values.
    """
    import pyarrow as pa
    from deltalake import DeltaTable, QueryBuilder

    if not DeltaTable.is_deltatable(uri, storage_options=storage):
        return None
    select = ", ".join(f'"{c}"' for c in columns) if columns else "*"
    sql = f"SELECT {select} FROM t" + (f" WHERE {where}" if where else "")
    result = QueryBuilder().register("t", DeltaTable(uri, storage_options=storage)).execute(sql)
    return pa.table(result.read_all())


def read_warehouse_table(
    settings: Settings, name: str, columns: list[str] | None = None, where: str = ""
) -> pa.Table | None:
    """The warehouse's table ``name`` (see ``read_delta``)."""
    return read_delta(table_uri(settings, name), storage_options(settings) or None, columns, where)
