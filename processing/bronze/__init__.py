"""Bronze: Kafka trades -> ``bronze.trades`` exactly once, with both engines.

``rows`` holds the pure parts (message -> row, batching, offset bookkeeping in snapshot summaries);
``writer`` is the embedded stack's thin consume/commit loop, ``spark_stream`` the compose stack's
Structured Streaming job; ``progress`` answers how far bronze has got; ``metrics`` the writer's series.
"""
