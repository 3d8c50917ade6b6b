#!/usr/bin/env sh
# Downloads, at image BUILD time, the jars the Spark jobs need on top of Spark itself: the Iceberg
# Spark runtime + AWS bundle (S3FileIO) and the Kafka source with its dependencies. Every version
# comes from the build args (declared once, in docker-compose.yml's x-spark-versions), so the jars
# always match the Spark and Scala of the image. Each jar is checked against Maven Central's .sha1
# so a truncated download fails the build instead of the job.
# usage: fetch-jars.sh DEST_DIR   (env: SPARK_VERSION SCALA_BINARY ICEBERG_VERSION
#                                        KAFKA_CLIENTS_VERSION COMMONS_POOL2_VERSION)
set -eu
dest="$1"
: "${SPARK_VERSION:?}" "${SCALA_BINARY:?}" "${ICEBERG_VERSION:?}" "${KAFKA_CLIENTS_VERSION:?}" "${COMMONS_POOL2_VERSION:?}"
spark_minor="${SPARK_VERSION%.*}"
maven="${MAVEN_REPOSITORY:-https://repo1.maven.org/maven2}"

mkdir -p "$dest"
fetch() {  # group/path artifact version
  jar="$2-$3.jar"
  url="$maven/$1/$2/$3/$jar"
  curl -fsSL --retry 3 -o "$dest/$jar" "$url"
  expected="$(curl -fsSL --retry 3 "$url.sha1" | cut -c1-40)"
  echo "$expected  $dest/$jar" | sha1sum -c -
}

fetch org/apache/iceberg "iceberg-spark-runtime-${spark_minor}_${SCALA_BINARY}" "$ICEBERG_VERSION"
fetch org/apache/iceberg iceberg-aws-bundle "$ICEBERG_VERSION"
fetch org/apache/spark "spark-sql-kafka-0-10_${SCALA_BINARY}" "$SPARK_VERSION"
fetch org/apache/spark "spark-token-provider-kafka-0-10_${SCALA_BINARY}" "$SPARK_VERSION"
fetch org/apache/kafka kafka-clients "$KAFKA_CLIENTS_VERSION"
fetch org/apache/commons commons-pool2 "$COMMONS_POOL2_VERSION"
