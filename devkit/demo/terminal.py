"""The demo's terminal: the banner, reading typed lines, printing what changed.

``python -m devkit.demo`` runs :func:`main`; the scenario is :mod:`devkit.demo.session`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from bot.logs import ScrubbingFilter
from devkit.demo.session import (
    COORDINATOR,
    DEFAULT_COORDINATOR_ID,
    DEFAULT_LAWYER_ID,
    DEFAULT_USER_ID,
    LAWYER,
    DemoSession,
)

BANNER = """\
Intake bot demo: the real bot on an emulated Telegram, right here. Nothing leaves this computer.
  some text        send it as a message          /start, /status, ...  send a command
  1, 2, ...        press that button of the newest message with buttons
  /status          after a report: the reporter's reports, each with a button to add news
  \\3               send the text "3" (a backslash keeps a number from pressing a button)
  /as coordinator  play the coordinator (id 1): /queue, /case REF, /assign REF, /stats, /staff, ...
  /as lawyer       play the lawyer (id 2, invited at start): /queue, /mine, /case REF, ...
  /as reporter     back to the reporter; /as alone shows whom you play (the bot never sees /as)
  /file PATH [caption]  send a file from disk: .jpg/.png/... as a photo, .ogg/.opus as a voice
                   message, the rest as a document; /file --as-document PATH: a photo "as a file"
  /save DIR        write the files the bot sent to the person you play into DIR
  /quit or Ctrl-D  leave; the temporary database and key are deleted
  🗑 lists messages the bot deleted from the chat; "(edited)" marks a message it changed;
  [to lawyer] ... is a message to someone you are not playing; 🖼 is a picture the bot sent.
RU: Демо бота: напишите текст — он будет отправлен; цифра — нажать кнопку с этим номером; \
/as coordinator, /as lawyer, /as reporter — играть координатора, адвоката или заявителя; \
/quit или Ctrl-D — выход. Удалённые ботом сообщения отмечены 🗑. При выходе всё стирается.
TG: Намоиши бот: матн нависед — он фиристода мешавад; рақам — тугмаи ҳамон рақамро пахш \
мекунад; /as coordinator, /as lawyer, /as reporter — нақши ҳамоҳангсоз, адвокат ё \
муроҷиаткунандаро бозӣ кардан; /quit ё Ctrl-D — баромадан. Паёмҳое, ки бот нест кард, \
бо 🗑 нишон дода мешаванд. Ҳангоми баромадан ҳама чиз нест карда мешавад."""


async def _read_line(stream: TextIO, prompt: str) -> str | None:
    """One line from ``stream`` without blocking the event loop; None at end of input.

    A daemon thread (not the default executor, which is joined at exit) so that
    Ctrl-C does not hang waiting for a line that will never come.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str | None] = loop.create_future()

    def deliver(result: str | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def read() -> None:
        result: str | None = None
        error: BaseException | None = None
        try:
            if stream is sys.stdin:
                result = input(prompt)
            else:
                raw = stream.readline()
                result = raw.rstrip("\r\n") if raw else None
        except EOFError:
            result = None
        except Exception as exc:  # handed to the event loop
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            loop.call_soon_threadsafe(deliver, result, error)

    threading.Thread(target=read, name="demo-input", daemon=True).start()
    return await future


async def run(
    stream: TextIO,
    *,
    echo: bool,
    user_id: int = DEFAULT_USER_ID,
    write: Callable[[str], None] = print,
) -> None:
    """The terminal loop: read lines from ``stream`` until /quit or end of input."""
    write(BANNER)
    write("")
    session = DemoSession(user_id=user_id)
    try:
        write(await session.start())
        while not session.finished:
            prompt = f"{session.role}> "
            line = await _read_line(stream, "" if echo else prompt)
            if line is None:
                if not echo:
                    write("")
                break
            if echo:
                write(f"{prompt}{line}")
            output = await session.handle(line)
            if output:
                write(output)
    finally:
        await session.close()
    write("(demo closed; its temporary database and key were deleted)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.demo",
        description="Chat with the real intake bot in this terminal, on an emulated Telegram.",
    )
    parser.add_argument(
        "--input",
        type=Path,
        metavar="FILE",
        help="read the typed lines from FILE instead of the terminal (they are echoed)",
    )
    parser.add_argument(
        "--user-id",
        type=int,
        default=DEFAULT_USER_ID,
        help=(
            f"Telegram id of the reporter (default {DEFAULT_USER_ID}; "
            f"{DEFAULT_COORDINATOR_ID} is the coordinator, {DEFAULT_LAWYER_ID} the lawyer)"
        ),
    )
    return parser


def _configure_logging() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[log] %(levelname)s %(name)s %(message)s"))
    handler.addFilter(ScrubbingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for staff_id, role in ((DEFAULT_COORDINATOR_ID, COORDINATOR), (DEFAULT_LAWYER_ID, LAWYER)):
        if args.user_id == staff_id:
            build_parser().error(f"--user-id {staff_id} is the demo's {role}")
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")
    _configure_logging()
    try:
        if args.input is not None:
            with args.input.open(encoding="utf-8") as stream:
                asyncio.run(run(stream, echo=True, user_id=args.user_id))
        else:
            asyncio.run(run(sys.stdin, echo=not sys.stdin.isatty(), user_id=args.user_id))
    except KeyboardInterrupt:
        print("\n(interrupted; the temporary database and key were deleted)")
        return 130
    return 0
