"""What the ``speed`` extra buys: uvloop's event loop.

Optional (``pip install intake-bot[speed]``; the Docker image and ``make run``
have it). Without it the standard library's loop serves, at a cost in CPU per
update measured in docs/performance.md (as is orjson's codec, measured and not
kept). ``auto`` takes uvloop when it is installed; naming it when it is not is
a settings error, not a silent fallback.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable
from typing import Literal

EventLoopChoice = Literal["auto", "asyncio", "uvloop"]


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def event_loop_name(choice: EventLoopChoice) -> Literal["asyncio", "uvloop"]:
    """Which loop ``choice`` means here."""
    if choice == "uvloop" or (choice == "auto" and installed("uvloop")):
        return "uvloop"
    return "asyncio"


def loop_factory(choice: EventLoopChoice) -> Callable[[], asyncio.AbstractEventLoop]:
    if event_loop_name(choice) == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop
