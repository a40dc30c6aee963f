"""The bot under test, in its own process.

Two kinds of bot poll the harness's emulator over real HTTP:

* ``intake``: the real bot, built as ``devkit.sandbox.Sandbox.start`` and
  ``bot.app.run`` build it (``create_bot`` + ``create_dispatcher``, polling with
  ``handle_as_tasks=True``, the production default);
* ``echo``: a minimal aiogram Dispatcher with one handler answering every
  message and every callback (the baseline);
* ``webhook``: the real bot as a webhook replica (``bot.webhook.build_webhook_app``
  on 127.0.0.1, a free port), for the ``faults`` section: the harness's proxy
  posts updates to it. It sends ``ready <port>``, and ``handled <update_id>``
  when a handler ran to the end (a redelivery dropped as a duplicate is not
  one), from the innermost outer middleware as ``devkit.replicas.HandledCounter``.
  ``--answers-as-calls`` answers every button press with a call of its own
  instead of in the webhook's response (to measure what that costs).

The harness forks it from a ``multiprocessing`` fork server that imported aiogram
and the bot once (``bench.BOT_PRELOAD``; importing aiogram alone takes seconds), and
talks to it over a pipe: the bot sends ``ready`` once polling runs, ``done
<update_id> <unix time> <1|0>`` when the Dispatcher finished an update
(``feed_update`` returned: middlewares, handler and commit included; 0 if it
raised) and ``stopped`` at the end; the harness sends ``stop``. ``python -m
bench.botproc`` runs the same with stdout/stdin as the pipe. Running in its own
process keeps the emulator's memory and CPU out of the bot's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import CallbackQuery, Message, Update

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


#: Updates per person per 10 s: far above any reporter of the benchmark.
BENCH_RATE_LIMIT = 1_000_000


class _Channel:
    """Lines to the harness and the ``stop`` command from it."""

    def __init__(self, send: Callable[[str], None], wait_stop: Callable[[], Any]) -> None:
        self.send = send
        self.wait_stop = wait_stop


def _stdio_channel() -> _Channel:
    def send(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    async def wait_stop() -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = await reader.readline()
            if not line or line.strip() == b"stop":
                return

    return _Channel(send, wait_stop)


def _pipe_channel(conn: Connection) -> _Channel:
    def send(line: str) -> None:
        conn.send_bytes(line.encode("ascii"))

    async def wait_stop() -> None:
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        loop.add_reader(conn.fileno(), readable.set)
        try:
            while True:
                await readable.wait()
                readable.clear()
                try:
                    while conn.poll():
                        if conn.recv_bytes() == b"stop":
                            return
                except (EOFError, OSError):
                    return  # the harness is gone: stop as well
        finally:
            loop.remove_reader(conn.fileno())

    return _Channel(send, wait_stop)


def _probe(dispatcher: Dispatcher, channel: _Channel) -> None:
    """Report every finished update to the harness (wraps ``Dispatcher.feed_update``)."""
    original = dispatcher.feed_update

    async def feed_update(bot: Bot, update: Update, **kwargs: Any) -> Any:
        ok = False
        try:
            result = await original(bot, update, **kwargs)
            ok = True
            return result
        finally:
            channel.send(f"done {update.update_id} {time.time():.6f} {int(ok)}")

    dispatcher.feed_update = feed_update  # type: ignore[method-assign]


def _echo_dispatcher() -> Dispatcher:
    router = Router(name="echo")

    @router.message()
    async def echo_message(message: Message) -> None:
        await message.answer(message.text or message.caption or "…")

    @router.callback_query()
    async def echo_callback(query: CallbackQuery) -> None:
        await query.answer()

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    return dispatcher


class _HandledProbe:
    """Innermost outer middleware: ``handled <update_id>`` once a handler returned."""

    def __init__(self, channel: _Channel) -> None:
        self.channel = channel

    async def __call__(
        self,
        handler: Callable[[Any, dict[str, Any]], Awaitable[Any]],
        event: Any,
        data: dict[str, Any],
    ) -> Any:
        result = await handler(event, data)
        if isinstance(event, Update):
            self.channel.send(f"handled {event.update_id}")
        return result


def _intake_bot(args: argparse.Namespace) -> tuple[Bot, Dispatcher, AsyncEngine]:
    """The real bot, as ``bot.app.run`` builds it (settings given, not read from .env)."""
    from pydantic import SecretStr

    from bot.config import RunMode, Settings
    from bot.factory import create_bot, create_dispatcher
    from bot.logs import configure_logging
    from storage.crypto import KeyRing
    from storage.crypto.keyfile import load_key_file
    from storage.db import create_engine, create_sessionmaker

    webhook: dict[str, Any] = {}
    if args.mode == "webhook":
        webhook = {
            "mode": RunMode.WEBHOOK,
            "webhook_url": args.webhook_url,
            "webhook_secret": SecretStr(args.webhook_secret),
        }
    settings = Settings(
        _env_file=None,
        **webhook,
        bot_token=SecretStr(args.token),
        telegram_api_url=args.api_url,
        database_url=args.database_url,
        key_file=Path(args.key_file),
        coordinator_ids=frozenset(args.coordinator),
        # Flood control counts every update, as deployed, with a limit no reporter
        # reaches (pressing as fast as the bot answers is not a person's pace);
        # the global breaker is off: a surge is what it would stop.
        rate_limit=BENCH_RATE_LIMIT,
        intake_per_minute=0,
        log_level="INFO",
        event_loop=args.event_loop,
    )
    configure_logging(settings.log_level)
    keyring = KeyRing(load_key_file(settings.key_file))
    engine = create_engine(settings.database_url, schema=args.schema)
    bot = create_bot(settings)
    outbox_policy = None
    if args.fast_outbox:
        from devkit.sandbox import FAST_OUTBOX

        outbox_policy = FAST_OUTBOX
    dispatcher = create_dispatcher(
        settings, create_sessionmaker(engine), keyring, outbox_policy=outbox_policy
    )
    return bot, dispatcher, engine


async def _serve_webhook(args: argparse.Namespace, channel: _Channel) -> None:
    """A webhook replica until ``stop`` (or a kill -9: nothing here runs then)."""
    from aiohttp import web

    from bot.webhook import build_webhook_app

    bot, dispatcher, engine = _intake_bot(args)
    _probe(dispatcher, channel)
    dispatcher.update.outer_middleware(_HandledProbe(channel))
    app = build_webhook_app(
        dispatcher["settings"], bot, dispatcher, answer_in_response=not args.answers_as_calls
    )
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.0)
    await runner.setup()  # the dispatcher's startup (outbox, background jobs) runs here
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        channel.send(f"ready {port}")
        await channel.wait_stop()
    finally:
        await runner.cleanup()
        await bot.session.close()
        await engine.dispose()
    channel.send("stopped")


async def run(args: argparse.Namespace, channel: _Channel) -> None:
    if args.mode == "webhook":
        await _serve_webhook(args, channel)
        return
    engine: AsyncEngine | None = None
    if args.mode == "echo":
        logging.basicConfig(level=logging.WARNING)
        session = AiohttpSession(api=TelegramAPIServer.from_base(args.api_url))
        bot = Bot(args.token, session=session)
        dispatcher = _echo_dispatcher()
    else:
        bot, dispatcher, engine = _intake_bot(args)
    _probe(dispatcher, channel)

    async def announce() -> None:
        channel.send("ready")

    dispatcher.startup.register(announce)
    await bot.delete_webhook(drop_pending_updates=False)
    polling = asyncio.create_task(
        dispatcher.start_polling(
            bot,
            allowed_updates=dispatcher.resolve_used_update_types(),
            handle_as_tasks=True,
            handle_signals=False,
            close_bot_session=True,
            tasks_concurrency_limit=args.tasks_limit,
        )
    )
    stop = asyncio.create_task(channel.wait_stop())
    try:
        await asyncio.wait({polling, stop}, return_when=asyncio.FIRST_COMPLETED)
        if polling.done():
            polling.result()  # polling ended on its own: surface why
            return
        with contextlib.suppress(RuntimeError):
            await dispatcher.stop_polling()
        await asyncio.wait_for(polling, timeout=30)
    finally:
        stop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stop
        if engine is not None:
            await engine.dispose()
    channel.send("stopped")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.botproc")
    parser.add_argument("--mode", choices=("intake", "echo", "webhook"), required=True)
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--schema", default=None)
    parser.add_argument("--key-file", default="")
    parser.add_argument("--coordinator", type=int, action="append", default=[])
    parser.add_argument("--webhook-url", default="", help="webhook mode: the public URL")
    parser.add_argument("--webhook-secret", default="", help="webhook mode: the secret token")
    parser.add_argument(
        "--fast-outbox", action="store_true", help="devkit.sandbox.FAST_OUTBOX (tests' timings)"
    )
    parser.add_argument(
        "--answers-as-calls",
        action="store_true",
        help="webhook mode: answer presses by a call, not in the webhook's response",
    )
    parser.add_argument("--profile", default=None, help="write cProfile stats here")
    parser.add_argument("--event-loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    parser.add_argument(
        "--tasks-limit", type=int, default=None, help="tasks_concurrency_limit (default: none)"
    )
    return parser.parse_args(list(argv))


def _run_profiled(args: argparse.Namespace, channel: _Channel) -> None:
    from bot.speedups import loop_factory

    def run_bot() -> None:
        with asyncio.Runner(loop_factory=loop_factory(args.event_loop)) as runner:
            runner.run(run(args, channel))

    if not args.profile:
        run_bot()
        return
    # CPU time, not wall time: the machine may be shared with other work.
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    try:
        run_bot()
    finally:
        profiler.disable()
        profiler.dump_stats(args.profile)


def child_main(argv: list[str], conn: Connection, log_path: str) -> None:
    """Entry point in a process forked by the harness's fork server."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.environ.update({"PYTHONUNBUFFERED": "1"})
    for name in list(os.environ):
        if name.startswith("INTAKE_"):
            del os.environ[name]  # the bot gets exactly the harness's settings
    try:
        _run_profiled(parse_args(argv), _pipe_channel(conn))
    finally:
        conn.close()


def main() -> None:
    _run_profiled(parse_args(sys.argv[1:]), _stdio_channel())


if __name__ == "__main__":
    main()
