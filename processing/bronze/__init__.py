"""The embedded engine's streaming bronze writer: Kafka trades -> ``bronze.trades`` exactly once.

``rows`` holds the pure parts (message -> row, batching, offset bookkeeping in snapshot summaries);
``writer`` is the thin consume/commit loop; ``metrics`` its Prometheus series.
"""
