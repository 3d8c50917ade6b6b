"""Refinement: the embedded engine (DuckDB + pyiceberg), Spark jobs, and the dbt project."""
