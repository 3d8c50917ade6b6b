"""The bottom layer: settings, table contracts, the seams to the catalog and Kafka, time parsing, job
metrics, bootstrap, the embedded-stack supervisor and service specs, and container images.
Nothing here imports a stage or the top layer."""
