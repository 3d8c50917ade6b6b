"""Observability: Prometheus alert rules and configs, Grafana provisioning, the panel definitions
(``panels``) from which Grafana's dashboards and the embedded ``lakehouse dashboard`` are built."""
