"""Free-port picking: below the ephemeral range, each port (and its gRPC twin) handed out once per
process, never a port of a stack on the default settings."""

from __future__ import annotations

import pytest

from infrastructure import services


def test_a_default_stack_port_or_a_handed_out_one_is_never_picked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert {19092, 18333, 19333, 9101, 9091} <= services.default_stack_ports()
    first = services.free_port(grpc_too=True)
    draws = iter([19092, 8333, first, first + 10000, first - 10000, 12345, 12345, 12346])
    monkeypatch.setattr(services.random, "randrange", lambda *_: next(draws))
    if {12345, 12346} & services._handed_out:
        pytest.skip("12345 or 12346 was handed out earlier in this process")
    # 19092 is Kafka's default and 8333 S3's; first and its twin are taken, and first - 10000's twin
    assert services.free_port(grpc_too=True) == 12345
    assert services.free_port() == 12346  # 12345 is handed out once only
