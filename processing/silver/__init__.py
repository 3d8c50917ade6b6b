"""Silver: bronze trades typed, validated and deduplicated, one row per (exchange, product_id, trade_id).

``sql`` holds the logic (written once, run by both engines); ``duckdb_runner`` is the embedded
engine; ``processing/spark_jobs/silver_batch.py`` the compose stack's; ``run.run_silver`` picks one.
"""
