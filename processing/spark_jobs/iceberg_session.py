"""Spark session wiring for the compose stack's jobs: the Iceberg REST catalog and S3, from settings.

Static engine options live in ``infrastructure/spark/conf/spark-defaults.conf``; everything that
depends on where the stack runs (catalog URI, warehouse, S3 endpoint and keys) comes from the one
``Settings`` object here, so the Spark jobs read the same LAKEHOUSE_* variables as the Python code.
Table column types come from the Iceberg contracts in ``infrastructure.tables`` via :func:`spark_schema`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyiceberg import types as ice
from pyiceberg.schema import Schema

from infrastructure.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.types import DataType, StructType


def iceberg_catalog_conf(settings: Settings) -> dict[str, str]:
    """Spark conf registering ``settings.catalog.name`` as an Iceberg REST catalog (the default one)."""
    key, secret = settings.s3.credentials()
    prefix = f"spark.sql.catalog.{settings.catalog.name}"
    conf = {
        prefix: "org.apache.iceberg.spark.SparkCatalog",
        f"{prefix}.type": "rest",
        f"{prefix}.uri": settings.catalog.uri,
        f"{prefix}.warehouse": settings.catalog.warehouse,
        f"{prefix}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        f"{prefix}.s3.endpoint": settings.s3.endpoint,
        # SeaweedFS serves buckets by path, not by virtual host
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


def build_session(settings: Settings, app_name: str) -> SparkSession:
    """A Spark session with the lakehouse catalog; master and memory come from spark-defaults."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    for key, value in iceberg_catalog_conf(settings).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


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
