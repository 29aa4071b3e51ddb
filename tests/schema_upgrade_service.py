"""Test entry point: run a consumer as the next release of the code would run, one that knows
`market.bar/2` (a bar with one added field that has a default). Never used in production.

    python -m tests.schema_upgrade_service consumer.storage

The added field (`trade_count`) is read and dropped: what the release would store it in does not
matter to the test, which is about the old consumers pausing at the first /2 message and the new
ones continuing from exactly there.
"""

from __future__ import annotations

import runpy
import sys
from typing import Any

import msgspec

from shared import schemas
from shared.schemas import Bar


class BarV2(Bar, tag="market.bar/2"):
    """market.bar/1 plus `trade_count` (defaulted, so a /1 reader's fields are all there)."""

    trade_count: int | None = None


def install() -> None:
    """Make shared.schemas decode market.bar/1 and /2 into Bar (before any consumer imports)."""
    either = msgspec.json.Decoder(Bar | BarV2)  # type: ignore[operator]
    original = schemas.decode

    def decode(raw: bytes | None, model: type[Any]) -> Any:
        if model is not Bar or raw is None:
            return original(raw, model)
        try:
            message = either.decode(raw)
        except (msgspec.DecodeError, UnicodeDecodeError):
            return original(raw, model)  # its error, with its reason
        if isinstance(message, BarV2):
            # Through Bar's own decoder, so every check a /1 bar gets applies to this one too.
            fields = {name: getattr(message, name) for name in Bar.__struct_fields__}
            return original(schemas.encode(Bar(**fields)), Bar)
        return original(raw, model)

    schemas.KNOWN_VERSIONS["market.bar"] = 2
    schemas.decode = decode  # type: ignore[assignment]


def main() -> None:
    module = sys.argv[1]
    install()
    sys.argv = [module]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
