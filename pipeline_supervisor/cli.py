"""Start, watch and stop the pipeline's services as OS processes: `python start_pipeline.py`.

`python start_pipeline.py status` shows one screen of a running pipeline instead (see
`python -m pipeline status`)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence

from pipeline_supervisor.state_file import state_path
from pipeline_supervisor.status import scrape_host
from pipeline_supervisor.supervisor import (
    SETTINGS_EXIT,
    SETUP_STEPS,
    children_for,
    run_step,
    say,
    stop_all,
    supervise,
)
from shared.errors import SettingsError
from shared.services import Service, all_services
from shared.settings import (
    HealthSettings,
    StackSettings,
    build,
    check_setting_names,
    project_root,
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    known = {service.name: service for service in all_services()}

    def selection(value: str) -> tuple[Service, ...]:
        names = tuple(dict.fromkeys(name.strip() for name in value.split(",") if name.strip()))
        unknown = [name for name in names if name not in known]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown service(s) {', '.join(unknown) or '(none)'}; known: {', '.join(known)}"
            )
        return tuple(known[name] for name in names)

    def positive(value: str) -> float:
        seconds = float(value)
        if seconds <= 0:
            raise argparse.ArgumentTypeError("must be > 0")
        return seconds

    parser = argparse.ArgumentParser(prog="python start_pipeline.py", description=__doc__)
    parser.add_argument(
        "--services",
        type=selection,
        default=all_services(),
        help=f"comma-separated subset to start (default: {','.join(known)})",
    )
    parser.add_argument(
        "--status-every",
        type=positive,
        default=5.0,
        metavar="SECONDS",
        help="seconds between status lines (default: 5)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["status"]:
        # One screen of the running pipeline (the same as `python -m pipeline status`).
        os.chdir(project_root())
        from pipeline.status import main as status_main

        return status_main(argv[1:])
    args = parse_args(argv)
    stop = threading.Event()

    def request_stop(_signum: int, _frame: object) -> None:
        stop.set()  # only the event: the main loop does the stopping

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    # The services run `-m` from the checkout and read its `.env`: so does this process.
    os.chdir(project_root())
    try:
        check_setting_names()  # a mistyped name stops us before any setup step
        health = build(HealthSettings)
        stack = build(StackSettings)
    except SettingsError as exc:
        say(str(exc))
        return SETTINGS_EXIT
    if health.port is not None and len(args.services) > 1:
        say(
            f"HEALTH_PORT={health.port} would give {len(args.services)} services one port; "
            "unset it (each service adds its offset to HEALTH_BASE_PORT)"
        )
        return SETTINGS_EXIT
    for step in SETUP_STEPS:
        code = run_step([sys.executable, "-m", *step], stop)
        if stop.is_set():
            return 0
        if code != 0:
            return code
    children = children_for(args.services, health)
    try:
        code = supervise(
            children,
            stop,
            args.status_every,
            scrape_host(health.host),
            state_path=state_path(stack, health),
        )
    finally:
        say(f"stopping {', '.join(child.name for child in children)}", sys.stdout)
        stop_all(children)
    say("stopped", sys.stdout)
    return code
