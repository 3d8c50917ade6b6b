"""Data quality: Great Expectations suites for silver and gold, run per time window (``lakehouse quality``)."""
