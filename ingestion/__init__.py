"""Coinbase (and replay/synthetic) trades -> normalized events -> Kafka."""
