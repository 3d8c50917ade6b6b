"""The embedded services start from their specs and enforce what the stack promises (auth, loopback)."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from confluent_kafka.admin import AdminClient
from pyiceberg.exceptions import OAuthError

from infrastructure.catalog import load_catalog
from tests.fixtures.services import settings_for


def test_broker_answers_metadata(broker) -> None:
    metadata = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10)
    assert metadata.brokers


def test_anonymous_s3_is_refused(seaweedfs) -> None:
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{seaweedfs.s3_endpoint}/warehouse/", timeout=5)
    assert err.value.code in (401, 403)


def test_catalog_accepts_the_key_pair_and_refuses_a_wrong_one(seaweedfs) -> None:
    good = load_catalog(settings_for(seaweedfs=seaweedfs))
    assert isinstance(good.list_namespaces(), list)
    wrong = settings_for(seaweedfs=seaweedfs, s3={"secret_key": "wrong"})
    with pytest.raises(OAuthError):
        load_catalog(wrong).list_namespaces()
