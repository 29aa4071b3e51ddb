"""The health server's own behaviour: a scraper that hangs up is routine, not a traceback."""

from __future__ import annotations

import logging
import socket
import struct
import time

import pytest

from shared.health import Health, HealthServer
from shared.metrics import ROWS_WRITTEN


def test_a_scraper_hanging_up_before_the_answer_prints_no_traceback(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    for n in range(2000):  # a /metrics body far larger than the socket buffers
        ROWS_WRITTEN.labels(f"hangup_test_{n}").inc()
    server = HealthServer(Health("test.service"), "127.0.0.1", 0)
    try:
        with caplog.at_level(logging.WARNING, logger="shared.health"):
            for _ in range(5):
                client = socket.create_connection(("127.0.0.1", server.port))
                client.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                # Close with a reset at once: the server's write fails (broken pipe or reset).
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
            time.sleep(0.5)
    finally:
        server.close()
        for n in range(2000):
            ROWS_WRITTEN.remove(f"hangup_test_{n}")
    err = capfd.readouterr().err
    assert "Traceback" not in err, err
    assert not caplog.records
