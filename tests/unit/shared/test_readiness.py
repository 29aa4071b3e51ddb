"""/readyz apart from /healthz: a member is ready in its group with every partition consuming."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from shared.health import Health, HealthServer
from shared.loop.partition import Partition, phase_counts, unready_reason


def get(port: int, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_ready_needs_the_group_and_every_owned_partition_consuming() -> None:
    consuming = Partition(stored=5, known=True, started=True)
    paused = Partition(stored=5, known=True, started=True, pauses={"upgrade": "upgrade needed"})
    awaiting = Partition()
    assert unready_reason({}, joined=False) is not None
    assert unready_reason({}, joined=True) is None  # owns nothing: ready
    assert unready_reason({("t", 0): consuming}, joined=True) is None
    reason = unready_reason({("t", 0): consuming, ("t", 1): paused, ("t", 2): awaiting}, True)
    assert reason == "2 of 3 partition(s) not consuming (1 paused, 1 awaiting offsets)"
    assert phase_counts({("t", 1): paused, ("t", 2): awaiting}) == {
        "consuming": 0,
        "paused": 1,
        "awaiting_offsets": 1,
    }


def test_readyz_and_healthz_answer_separately() -> None:
    health = Health("test.service")
    server = HealthServer(health, "127.0.0.1", 0)
    try:
        assert get(server.port, "/readyz") == (
            200,
            {"service": "test.service", "status": "ready", "reasons": []},
        )
        health.not_ready("partitions", "not in the consumer group yet")
        status, body = get(server.port, "/readyz")
        assert (status, body["reasons"]) == (503, ["not in the consumer group yet"])
        assert get(server.port, "/healthz")[0] == 200  # joining is not red
        health.ready("partitions")
        assert get(server.port, "/readyz")[0] == 200
    finally:
        server.close()
