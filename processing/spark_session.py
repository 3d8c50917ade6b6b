"""A SparkSession wired to the lakehouse, for every Spark job: the Iceberg REST catalog and S3, from ``Settings``.

The catalog is registered under ``settings.catalog.name`` (Nessie's Iceberg REST endpoint in the
compose stack) as the default catalog, with Iceberg's SQL extensions for ``MERGE INTO``. Static
engine options live in ``infrastructure/spark/conf/spark-defaults.conf``; everything that depends
on where the stack runs comes from the one ``Settings`` object, so the Spark jobs read the same
LAKEHOUSE_* variables as the Python code. Column types come from the Iceberg contracts in
``infrastructure.tables`` via :func:`spark_schema`. The Iceberg runtime and AWS bundle jars must be
on the classpath (the compose stack's Spark image has them; pip's pyspark does not, and nothing can
be downloaded at run time): :func:`require_iceberg` says so clearly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyiceberg import types as ice
from pyiceberg.schema import Schema

from infrastructure.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.types import DataType, StructType

ICEBERG_CATALOG_CLASS = "org.apache.iceberg.spark.SparkCatalog"
ICEBERG_EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"


class IcebergUnavailable(RuntimeError):
    """The Iceberg Spark runtime is not on this Spark's classpath."""


def spark_conf(settings: Settings) -> dict[str, str]:
    """Spark properties for the lakehouse catalog; UTC session time so timestamps never shift."""
    key, secret = settings.s3.credentials()
    prefix = f"spark.sql.catalog.{settings.catalog.name}"
    conf = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.extensions": ICEBERG_EXTENSIONS,
        # Spark's default redaction misses "credential"; keep every secret out of the UI and logs
        "spark.redaction.regex": "(?i)secret|password|token|access.key|credential",
        prefix: ICEBERG_CATALOG_CLASS,
        f"{prefix}.type": "rest",
        f"{prefix}.uri": settings.catalog.uri,
        f"{prefix}.warehouse": settings.catalog.warehouse,
        f"{prefix}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        f"{prefix}.s3.endpoint": settings.s3.endpoint,
        f"{prefix}.s3.path-style-access": "true",
        f"{prefix}.s3.access-key-id": key,
        f"{prefix}.s3.secret-access-key": secret,
        f"{prefix}.client.region": settings.s3.region,
        "spark.sql.defaultCatalog": settings.catalog.name,
    }
    # same rule as the pyiceberg client (infrastructure.catalog): Nessie in compose has no OAuth
    if settings.catalog.auth == "oauth2":
        conf[f"{prefix}.credential"] = settings.catalog_credential()
    return conf


def build_session(settings: Settings, app_name: str, extra: dict[str, str] | None = None) -> SparkSession:
    """The job's session (master and resources come from spark-submit / spark-defaults)."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    for name, value in {**spark_conf(settings), **(extra or {})}.items():
        builder = builder.config(name, value)
    return builder.getOrCreate()


def require_iceberg(spark: SparkSession) -> None:
    try:
        spark.sparkContext._jvm.java.lang.Class.forName(ICEBERG_CATALOG_CLASS)  # type: ignore[union-attr]
    except Exception as exc:
        raise IcebergUnavailable(
            "this Spark has no Iceberg runtime jars (pip's pyspark ships none and nothing can be "
            "downloaded at run time): run the Spark job in the compose stack (`make spark-batch`), "
            "or use the embedded engine (`--engine duckdb`)"
        ) from exc


def spark_type(iceberg_type: ice.IcebergType) -> DataType:
    """The Spark type Iceberg's Spark runtime maps an Iceberg primitive to."""
    from pyspark.sql import types as T

    mapping: dict[type, DataType] = {
        ice.StringType: T.StringType(),
        ice.LongType: T.LongType(),
        ice.IntegerType: T.IntegerType(),
        ice.BooleanType: T.BooleanType(),
        ice.DoubleType: T.DoubleType(),
        ice.DateType: T.DateType(),
        ice.TimestamptzType: T.TimestampType(),
        ice.TimestampType: T.TimestampNTZType(),
        ice.BinaryType: T.BinaryType(),
    }
    if isinstance(iceberg_type, ice.DecimalType):
        return T.DecimalType(iceberg_type.precision, iceberg_type.scale)
    try:
        return mapping[type(iceberg_type)]
    except KeyError:
        raise TypeError(f"no Spark mapping for Iceberg type {iceberg_type}") from None


def spark_schema(schema: Schema) -> StructType:
    """Spark StructType of an Iceberg schema (names, order, types and nullability)."""
    from pyspark.sql import types as T

    return T.StructType(
        [T.StructField(f.name, spark_type(f.field_type), nullable=not f.required) for f in schema.fields]
    )
