"""Benchmarks: intake load against an echo baseline, and the staff side at scale.

``python -m bench`` (``make bench``) runs everything; ``python -m bench --quick``
(``make bench-quick``) is the small smoke run CI uses. See docs/performance.md.

Nothing here asserts timings: the benchmark fails only when it breaks (a
reporter never gets the receipt, a count does not match, a process dies).
"""

#: Modules the fork server imports once for every bot process it forks
#: (importing aiogram alone takes seconds).
BOT_PRELOAD = (
    "bench.botproc",
    "bot.factory",
    "bot.logs",
    "storage.crypto.keyfile",
    "storage.db",
)
