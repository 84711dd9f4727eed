"""`make unit` needs nothing running: a unit test that opens a port or talks to a service is
stopped and failed (tests/conftest.py's PortGuard), and this test shows the guard is on."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import PORT_GUARD, closed_port, listening_ports


def test_a_unit_test_that_binds_a_port_is_refused_and_failed():
    with socket.socket() as s, pytest.raises(PermissionError, match="may open no port"):
        s.bind(("127.0.0.1", 0))
    # The guard has it down against this test (which would fail, but for the line below).
    assert PORT_GUARD.seen == ["bound 127.0.0.1:0"]
    PORT_GUARD.seen.clear()


def test_a_unit_test_may_find_a_service_unreachable():
    port = closed_port()
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))
    assert PORT_GUARD.seen == []


def test_a_unit_test_that_talks_to_a_running_service_is_refused():
    ports = sorted(listening_ports())
    if not ports:
        pytest.skip("nothing listens on this machine to try it on")
    with socket.socket() as s, pytest.raises(PermissionError, match="may open no port"):
        s.connect(("127.0.0.1", ports[0]))
    assert PORT_GUARD.seen and PORT_GUARD.seen[0].startswith("connected to 127.0.0.1:")
    PORT_GUARD.seen.clear()
