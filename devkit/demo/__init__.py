"""``make demo``: chat with the real bot in a terminal, without Telegram or a token.

The genuine Dispatcher, handlers, encrypted storage and outbox run against the
in-process Bot API emulator (:class:`devkit.sandbox.Sandbox`), with a SQLite file
and a throwaway key in a temporary folder that is deleted at exit. Type text to
send it, a number to press that button of the newest message with buttons.

Three simulated Telegram users take part, each in their own chat with the bot:
the reporter (``--user-id``, 1001 by default), a coordinator (id 1, configured
as ``INTAKE_COORDINATOR_IDS``) and a lawyer (id 2), who joins the staff at
start through the real path: the coordinator's ``/invite`` link, then
``/start <token>``. ``/as reporter|coordinator|lawyer`` switches whom you play;
those switches are the demo's own and never reach the bot. Messages to the
people you are not playing are printed compactly as ``[to lawyer] ...``.

``/file PATH [caption]`` (or a bare path of an existing file) sends a file from
disk as the person played: images as photos (``--as-document``: as a file),
``.ogg``/``.oga``/``.opus`` as voice messages, the rest as documents; the bot
decides what it accepts. Files the bot sends are printed with the SHA-256 of
the bytes received, and ``/save DIR`` writes them into ``DIR``.

Usage::

    python -m devkit.demo                      # interactive
    printf '/start\\n1\\n' | python -m devkit.demo  # piped: the lines are echoed
    python -m devkit.demo --input walk.txt     # read the lines from a file

The demo never reads ``.env`` (it holds the production configuration); the
``INTAKE_*`` environment variables still apply, e.g. ``INTAKE_WIPE_CHAT=false``.

The scenario is :mod:`devkit.demo.session` (with :mod:`devkit.demo.files`); the terminal's
input and output are :mod:`devkit.demo.terminal` and :mod:`devkit.demo.screen`.
"""

from devkit.demo.session import (
    COORDINATOR,
    DEFAULT_COORDINATOR_ID,
    DEFAULT_LAWYER_ID,
    DEFAULT_USER_ID,
    DEMO_PIN,
    LAWYER,
    REPORTER,
    ROLES,
    DemoSession,
)
from devkit.demo.terminal import main, run

__all__ = [
    "COORDINATOR",
    "DEFAULT_COORDINATOR_ID",
    "DEFAULT_LAWYER_ID",
    "DEFAULT_USER_ID",
    "DEMO_PIN",
    "LAWYER",
    "REPORTER",
    "ROLES",
    "DemoSession",
    "main",
    "run",
]
