"""What the ``speed`` extra buys: uvloop's event loop and orjson for the Bot API.

Both are optional (``pip install intake-bot[speed]``; the Docker image and
``make run`` have them). Without them the standard library's loop and ``json``
serve, at a cost in CPU per update measured in docs/performance.md.
``auto`` takes each when it is installed; naming one that is not installed is a
settings error, not a silent fallback.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import Callable
from typing import Any, Literal

EventLoopChoice = Literal["auto", "asyncio", "uvloop"]
JsonCodecChoice = Literal["auto", "stdlib", "orjson"]

JsonLoads = Callable[..., Any]
JsonDumps = Callable[..., str]


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def event_loop_name(choice: EventLoopChoice) -> Literal["asyncio", "uvloop"]:
    """Which loop ``choice`` means here."""
    if choice == "uvloop" or (choice == "auto" and installed("uvloop")):
        return "uvloop"
    return "asyncio"


def json_codec_name(choice: JsonCodecChoice) -> Literal["stdlib", "orjson"]:
    """Which codec ``choice`` means here."""
    if choice == "orjson" or (choice == "auto" and installed("orjson")):
        return "orjson"
    return "stdlib"


def loop_factory(choice: EventLoopChoice) -> Callable[[], asyncio.AbstractEventLoop]:
    if event_loop_name(choice) == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def _orjson_dumps(value: Any, **_options: Any) -> str:
    import orjson

    return orjson.dumps(value).decode()


def json_codec(choice: JsonCodecChoice) -> tuple[JsonLoads, JsonDumps]:
    """``(loads, dumps)`` for aiogram's session: Bot API answers in, markup out."""
    if json_codec_name(choice) == "orjson":
        import orjson

        return orjson.loads, _orjson_dumps
    return json.loads, json.dumps
