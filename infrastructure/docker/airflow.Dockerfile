# Airflow 3 for the compose stack: the official image plus this project (which brings dbt and Great
# Expectations) and what spark-submit needs to run the silver job from a task: Java 17, pyspark
# pinned to the Spark image's version, and the same Iceberg + Kafka jars (same build args, same script).
ARG AIRFLOW_VERSION
FROM apache/airflow:${AIRFLOW_VERSION}-python3.11
ARG AIRFLOW_VERSION
ARG SPARK_VERSION
ARG SCALA_BINARY
ARG ICEBERG_VERSION
ARG KAFKA_CLIENTS_VERSION
ARG COMMONS_POOL2_VERSION

USER root
# spark-submit of Spark 4 needs a JDK, not a JRE (it calls jmap; SPARK-49117, SPARK-47635)
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jdk-headless \
 && rm -rf /var/lib/apt/lists/*
COPY --chown=airflow:root . /opt/lakehouse
# LAKEHOUSE_DATA_DIR (compose mounts the airflow-data volume here; a new volume takes this owner)
RUN mkdir -p /data && chown airflow:root /data

USER airflow
# apache-airflow pinned to the image's own version so installing the project cannot upgrade it;
# the statsd extra is the client behind AIRFLOW__METRICS__STATSD_ON (compose's statsd-exporter).
RUN pip install --no-cache-dir "apache-airflow[statsd]==${AIRFLOW_VERSION}" "pyspark==${SPARK_VERSION}" /opt/lakehouse
RUN sh /opt/lakehouse/infrastructure/spark/fetch-jars.sh \
      "$(python -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')"
ENV SPARK_CONF_DIR=/opt/lakehouse/infrastructure/spark/conf \
    PYSPARK_PYTHON=python
