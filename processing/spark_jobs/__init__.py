"""Spark jobs for the compose stack (``spark-submit``-able; settings from the same environment)."""
