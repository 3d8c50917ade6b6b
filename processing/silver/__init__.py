"""Silver: bronze trades typed, validated and deduplicated, one row per (exchange, product_id, trade_id).

``sql`` holds the logic (written once, run by both engines); ``duckdb_runner`` is the embedded
engine, ``spark_batch`` (through ``spark_submit``) the compose stack's; ``result`` the types both
return; ``run.run_silver`` picks one and ``run.silver_job`` is the pushed job the CLI and DAG call.
"""
