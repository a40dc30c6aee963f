"""Where a bot process's CPU goes, by layer: ``python -m bench.profile_split FILE.prof``.

Reads a cProfile file written by ``python -m bench --profile DIR`` (CPU time)
and adds up each function's own time by the layer its file belongs to: the
event loop, aiohttp, aiogram, pydantic, SQLAlchemy, the database driver,
cryptography, JSON, the project's own code. A built-in function (a C call, no
file) counts for the layer of whoever called it, in proportion to the time
each caller spent in it. cProfile's own overhead inflates every Python call
alike, so read the shares, not the seconds.
"""

from __future__ import annotations

import argparse
import pstats
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

#: (layer, path fragments); the first layer whose fragment is in the file wins.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("project: handlers", ("/handlers/",)),
    ("project: questionnaire", ("/bot/questionnaire/", "/bot/intake/")),
    ("project: storage", ("/storage/",)),
    ("project: bot (middlewares, session, rest)", ("/bot/",)),
    ("benchmark probe", ("/bench/",)),
    ("aiogram", ("/aiogram/",)),
    ("pydantic", ("/pydantic/", "/pydantic_core/")),
    ("SQLAlchemy", ("/sqlalchemy/", "greenlet")),
    ("database driver", ("/asyncpg/", "/aiosqlite/", "/sqlite3/")),
    ("aiohttp (HTTP client and server)", ("/aiohttp/", "/multidict/", "/yarl/", "/http/")),
    ("cryptography", ("/cryptography/",)),
    ("JSON", ("/json/",)),
    ("event loop", ("/asyncio/", "uvloop", "/selectors", "/socket", "/ssl")),
    ("i18n (babel, gettext)", ("/babel/", "/gettext")),
)
OTHER = "other (standard library, typing, ...)"


def layer_of(filename: str) -> str | None:
    """None for a built-in (no file): it is charged to its callers."""
    if filename == "~" or filename.startswith("<"):
        return None
    for layer, fragments in LAYERS:
        if any(fragment in filename for fragment in fragments):
            return layer
    return OTHER


def split(stats: pstats.Stats) -> Counter[str]:
    seconds: Counter[str] = Counter()
    table = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, _name), (_cc, _nc, own, _cum, callers) in table.items():
        layer = layer_of(filename)
        if layer is not None:
            seconds[layer] += own
            continue
        charged = 0.0
        for (caller_file, _l, _n), (_ccc, _cnc, caller_own, _ccum) in callers.items():
            seconds[layer_of(caller_file) or OTHER] += caller_own
            charged += caller_own
        seconds[OTHER] += max(own - charged, 0.0)
    return seconds


def report(path: Path) -> str:
    seconds = split(pstats.Stats(str(path)))
    total = sum(seconds.values()) or 1.0
    lines = [f"{path.name}: {total:.1f} s of CPU under cProfile"]
    for layer, value in seconds.most_common():
        lines.append(f"  {100 * value / total:5.1f} %  {layer}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_split", description=__doc__)
    parser.add_argument("profiles", type=Path, nargs="+")
    args = parser.parse_args(argv)
    for path in args.profiles:
        print(report(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
