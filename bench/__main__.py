"""``python -m bench [--quick]``: run the benchmarks, print the tables, write the JSON.

Exit status 0 whatever the figures are; 1 only when the benchmark itself broke
(a reporter never got the receipt, a count did not match, a process died or
hung past its timeout); 2 for bad arguments. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

FULL_REPORTERS = (10, 100, 1000)
FULL_SIZES = (1_000, 10_000, 100_000)
FULL_PACED = 100


def _numbers(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers: {text!r}") from None
    if not values or any(value < 1 for value in values):
        raise argparse.ArgumentTypeError("expected positive numbers")
    return values


def _named_path(text: str) -> tuple[str, Path]:
    name, separator, path = text.partition("=")
    if not separator or not name or not Path(path).is_dir():
        raise argparse.ArgumentTypeError(f"expected NAME=PATH of a checkout: {text!r}")
    return name, Path(path).resolve()


def _positive(text: str) -> int:
    values = _numbers(text)
    if len(values) != 1:
        raise argparse.ArgumentTypeError("expected one positive number")
    return values[0]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="N=10 and 1k cases on both databases (CI smoke run)"
    )
    parser.add_argument("--reporters", type=_numbers, help="concurrent reporters, e.g. 10,100")
    parser.add_argument("--sizes", type=_numbers, help="case counts for the staff side")
    parser.add_argument(
        "--backends", default="sqlite,postgres", help="sqlite, postgres or both (default)"
    )
    parser.add_argument(
        "--paced",
        type=int,
        metavar="N",
        help="also N reporters who think 1-3 s before each step (default: 100; 0 in --quick)",
    )
    parser.add_argument(
        "--unlimited",
        type=int,
        metavar="N",
        help="also N reporters against a bot polling without tasks_concurrency_limit, "
        "aiogram's default (default: the largest --reporters; 0 in --quick)",
    )
    parser.add_argument(
        "--only",
        choices=("intake", "staff", "faults", "replicas", "levers", "surge"),
        help="run one part of the benchmark",
    )
    parser.add_argument(
        "--faults",
        help="faults to run, comma-separated "
        "(default: all; replica-crash and same-moment in --quick)",
    )
    parser.add_argument(
        "--fault-reporters",
        type=int,
        metavar="N",
        help="reporters in each run of the faults section (default: 50; 10 in --quick)",
    )
    parser.add_argument(
        "--event-loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="the intake bot's event loop (default: as deployed, uvloop when installed)",
    )
    parser.add_argument(
        "--lever-tree",
        action="append",
        default=[],
        type=_named_path,
        metavar="NAME=PATH",
        help="levers: a checkout of this tree with the change NAME taken out (repeatable)",
    )
    parser.add_argument(
        "--before", type=Path, metavar="PATH", help="levers: a checkout of the code before them"
    )
    parser.add_argument(
        "--lever-rounds",
        type=int,
        default=2,
        metavar="N",
        help="levers: run every configuration N times, interleaved (default: 2)",
    )
    parser.add_argument(
        "--surge-reporters",
        type=_positive,
        metavar="N",
        help="reporters in the surge section, thinking 1-3 s before each step "
        "(default: 1000; the surge runs in the full benchmark and with --only surge)",
    )
    parser.add_argument(
        "--surge-spread",
        type=float,
        default=0.0,
        metavar="S",
        help="surge: the reporters arrive over S seconds instead of all at once (default: 0)",
    )
    parser.add_argument(
        "--surge-replicas",
        type=_numbers,
        metavar="N,M",
        help="surge: the replica counts to run, one after the other (default: 1,2)",
    )
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="write cProfile stats of the bot processes"
    )
    parser.add_argument("--output", type=Path, help="JSON file (default: bench/results/...)")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="print the tables of an earlier results file again (targets re-checked), run nothing",
    )
    return parser


def _start_fork_server() -> None:
    """Bot processes are forked from a server that imports aiogram and the bot once.

    Started first, so that its imports run while this process does its own.
    """
    import multiprocessing
    from multiprocessing import forkserver

    from bench import BOT_PRELOAD

    multiprocessing.get_context("forkserver").set_forkserver_preload(list(BOT_PRELOAD))
    forkserver.ensure_running()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.render is not None:
        from bench import runner

        return runner.render(args.render)
    args.reporters_given = args.reporters is not None
    args.reporters = args.reporters or ([10] if args.quick else list(FULL_REPORTERS))
    args.sizes = args.sizes or ([1_000] if args.quick else list(FULL_SIZES))
    if args.paced is None:
        args.paced = 0 if args.quick else FULL_PACED
    if args.unlimited is None:
        args.unlimited = 0 if args.quick else max(args.reporters)
    if args.fault_reporters is None:
        args.fault_reporters = 10 if args.quick else 50
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    _start_fork_server()
    from bench import runner

    return runner.main(args)


if __name__ == "__main__":
    sys.exit(main())
