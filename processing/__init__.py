"""Refinement stages, each with both engines in its folder: ``bronze/`` (Kafka -> bronze, the embedded
writer and the Spark stream), ``silver/`` (one SQL, DuckDB and Spark runners), gold (``gold.py`` +
``dbt/``), table maintenance, and the DuckDB and Spark sessions they share."""
