"""``lakehouse dashboard``: the embedded stack's dashboard page, rendering ``monitoring.panels``
(the definitions Grafana's JSON is generated from) with DuckDB and the embedded Prometheus."""
