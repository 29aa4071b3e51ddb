"""Test entry point: run a service with a failpoint hook installed (never used in production).

    python -m tests.failpoint_service --failpoint after_copy consumer.storage

Failpoints (see shared/loop/failpoints.py for where they are):
- `after_copy`, `after_commit`, `relay_after_publish` (the alert relay: Kafka confirmed, the
  rows not marked yet): SIGKILL this process there (the first time it is reached, or the
  first time after `--skip N` passes: a kill in the middle of a run, not only at its start);
- `stall_after_copy`: sleep once for `--stall-s` inside the batch's transaction (to be fenced);
- `refuse_reassign_once`: the first re-assignment of partitions that awaited their offsets
  raises librdkafka's "Local: Erroneous state" (as during a rebalance under way);
- `raise_after_process_once`: the first batch processed (after `--skip N` batches) raises
  once its process has returned, as a handler that raised part way through would (a batch
  computed in place has changed the states already);
- `drift_once`: after the first commit, seek one assigned partition `--drift` messages ahead of
  its position between batches (a position that drifted from the stored offset).
Before a SIGKILL the hook prints the process's upsert-conflict count, so a test can add up the
conflicts of every process that ran (`conflicts before kill: N`).
"""

from __future__ import annotations

import argparse
import logging
import os
import runpy
import signal
import sys
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from shared.loop import failpoints

logger = logging.getLogger("tests.failpoint_service")
KILL_POINTS = ("after_copy", "after_commit", "relay_after_publish")


def conflicts_so_far() -> float:
    from prometheus_client import REGISTRY

    total = 0.0
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name == "pipeline_upsert_conflicts_total":
                total += sample.value
    return total


def make_hook(failpoint: str, stall_s: float, drift: int, skip: int = 0) -> failpoints.Hook:
    done = {"stall": False, "committed": False, "drift": False, "refuse": False, "raise": False}
    passes = {"left": skip}

    def hook(name: str, **context: Any) -> None:
        if name == failpoint and failpoint in KILL_POINTS and passes["left"] > 0:
            passes["left"] -= 1
        elif name == failpoint and failpoint in KILL_POINTS:
            print(f"conflicts before kill: {conflicts_so_far():g}", file=sys.stderr, flush=True)
            logger.warning("failpoint %s: killing this process", name)
            os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(10)  # SIGKILL is asynchronous; never run past the failpoint
        if failpoint == f"stall_{name}" and not done["stall"]:
            done["stall"] = True
            logger.warning("failpoint stall_%s: stalling %gs", name, stall_s)
            time.sleep(stall_s)
        if failpoint == f"refuse_{name}_once" and not done["refuse"]:
            done["refuse"] = True
            logger.warning("failpoint refuse_%s_once: raising Local: Erroneous state", name)
            raise KafkaException(KafkaError(KafkaError._STATE))
        if failpoint == f"raise_{name}_once" and not done["raise"]:
            if passes["left"] > 0:
                passes["left"] -= 1
            else:
                done["raise"] = True
                logger.warning("failpoint raise_%s_once: raising", name)
                raise RuntimeError(f"failpoint raise_{name}_once")
        if failpoint == "drift_once":
            if name == "after_commit":
                done["committed"] = True
            elif name == "before_poll" and done["committed"] and not done["drift"]:
                done["drift"] = _drift(context["consumer"], drift)

    return hook


def _drift(consumer: Consumer, ahead: int) -> bool:
    for tp in consumer.assignment():
        (position,) = consumer.position([TopicPartition(tp.topic, tp.partition)])
        if position.offset >= 0:
            consumer.seek(TopicPartition(tp.topic, tp.partition, position.offset + ahead))
            logger.warning(
                "failpoint drift_once: %s[%d] moved from %d to %d",
                tp.topic,
                tp.partition,
                position.offset,
                position.offset + ahead,
            )
            return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--failpoint", required=True)
    parser.add_argument("--stall-s", type=float, default=0.0)
    parser.add_argument("--drift", type=int, default=5)
    parser.add_argument(
        "--skip",
        type=int,
        default=0,
        help="passes of a kill point before it kills (of a raise point, before it raises)",
    )
    parser.add_argument("module")
    args = parser.parse_args()
    failpoints.install(make_hook(args.failpoint, args.stall_s, args.drift, args.skip))
    sys.argv = [args.module]
    runpy.run_module(args.module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
