"""A SparkSession wired to the lakehouse: the Iceberg REST catalog and S3 storage, from ``Settings``.

The catalog is registered under ``settings.catalog.name`` (Nessie's Iceberg REST endpoint in the
compose stack), with Iceberg's SQL extensions for ``MERGE INTO``. The Iceberg runtime and AWS
bundle jars must be on the classpath (the compose stack's Spark image has them; pip's pyspark
does not, and nothing can be downloaded at run time): :func:`require_iceberg` says so clearly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from infrastructure.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ICEBERG_CATALOG_CLASS = "org.apache.iceberg.spark.SparkCatalog"
ICEBERG_EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"


class IcebergUnavailable(RuntimeError):
    """The Iceberg Spark runtime is not on this Spark's classpath."""


def spark_conf(settings: Settings) -> dict[str, str]:
    """Spark properties for the lakehouse catalog; UTC session time so timestamps never shift."""
    key, secret = settings.s3.credentials()
    prefix = f"spark.sql.catalog.{settings.catalog.name}"
    return {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.extensions": ICEBERG_EXTENSIONS,
        # Spark's default redaction misses "credential"; keep every secret out of the UI and logs
        "spark.redaction.regex": "(?i)secret|password|token|access.key|credential",
        prefix: ICEBERG_CATALOG_CLASS,
        f"{prefix}.type": "rest",
        f"{prefix}.uri": settings.catalog.uri,
        f"{prefix}.warehouse": settings.catalog.warehouse,
        f"{prefix}.credential": settings.catalog_credential(),
        f"{prefix}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        f"{prefix}.s3.endpoint": settings.s3.endpoint,
        f"{prefix}.s3.path-style-access": "true",
        f"{prefix}.s3.access-key-id": key,
        f"{prefix}.s3.secret-access-key": secret,
        f"{prefix}.client.region": settings.s3.region,
    }


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
