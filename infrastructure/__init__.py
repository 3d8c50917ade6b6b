"""Embedded-stack supervisor, bootstrap, settings, CLI and container images."""
