"""Several webhook replicas on one PostgreSQL database, behind a round-robin proxy.

For the fault tests (``ReplicaCluster``: each replica is the real dispatcher
behind ``build_webhook_app``, with its own engine (pool) and HTTP server, in
this process) and the ``faults`` section of the benchmark (the same proxy in
front of replica processes, ``bench/replica_procs.py``). The proxy stands in
for the load balancer and for Telegram's delivery: it passes each update to
the next replica and, as Telegram does, delivers it again (to the next one)
after a 5xx or a dropped connection. It passes the replica's response back
whole: a Bot API method in its body is executed by the emulator, as by
Telegram. With ``duplicate`` it sends every update to two replicas at the
same moment (fault d). ``handled`` counts, per update id, how often a handler
ran to the end, over all replicas.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from aiogram import BaseMiddleware, Bot, Dispatcher
from aiogram.types import TelegramObject, Update
from aiohttp import web
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import RunMode, Settings
from bot.factory import create_bot, create_dispatcher
from bot.outbox import OutboxPolicy
from bot.webhook import SECRET_HEADER, build_webhook_app
from devkit.emulator import FakeTelegramServer
from storage.crypto import KeyRing
from storage.db import create_engine, create_sessionmaker

WEBHOOK_SECRET = "replica-cluster-secret_0123456789abcdef"  # noqa: S105 - a test value
PATH = "/tg/updates"


class HandledCounter(BaseMiddleware):
    """Innermost: counts updates whose handling returned (shared by all replicas)."""

    def __init__(self) -> None:
        self.handled: Counter[int] = Counter()

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        result = await handler(event, data)
        if isinstance(event, Update):
            self.handled[event.update_id] += 1
        return result


@dataclass(frozen=True)
class _Answer:
    """A replica's response as the proxy passes it back."""

    status: int
    body: bytes = b""
    kind: str = "text/plain"


class RoundRobinProxy:
    def __init__(self, *, attempts: int = 30) -> None:
        self.targets: list[str] = []
        self.attempts = attempts
        self.duplicate = False
        self.redeliveries = 0
        self.deliveries = 0
        self._next = itertools.count()
        self._client: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(PATH, self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}{PATH}"
        self._client = aiohttp.ClientSession()

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        secret = request.headers.get(SECRET_HEADER, "")
        if self.duplicate:
            first, second = await asyncio.gather(
                self._deliver(body, secret), self._deliver(body, secret)
            )
            # Telegram sees one response: a failure if either failed, else the one
            # carrying a method (the replica that handled it, not the one that
            # dropped it as a duplicate).
            answer = max(first, second, key=lambda a: (a.status, len(a.body)))
        else:
            answer = await self._deliver(body, secret)
        return web.Response(status=answer.status, body=answer.body, content_type=answer.kind)

    async def _deliver(self, body: bytes, secret: str) -> _Answer:
        """The replica's response, passed back whole: its body may carry a Bot API method."""
        assert self._client is not None
        answer = _Answer(502)
        for attempt in range(self.attempts):
            target = self.targets[next(self._next) % len(self.targets)]
            self.deliveries += 1
            try:
                async with self._client.post(
                    target,
                    data=body,
                    headers={SECRET_HEADER: secret, "Content-Type": "application/json"},
                ) as response:
                    answer = _Answer(response.status, await response.read(), response.content_type)
            except (aiohttp.ClientError, ConnectionError):
                answer = _Answer(502)
            if answer.status < 500:
                return answer
            self.redeliveries += 1
            # Telegram waits before it delivers again, longer each time.
            await asyncio.sleep(min(0.05 * 2**attempt, 2.0))
        return answer


@dataclass
class Replica:
    engine: AsyncEngine
    bot: Bot
    dispatcher: Dispatcher
    runner: web.AppRunner
    url: str


@dataclass
class ReplicaCluster:
    server: FakeTelegramServer
    keyring: KeyRing
    database_url: str
    schema: str | None = None
    outbox_policy: OutboxPolicy | None = None
    settings_overrides: dict[str, Any] = field(default_factory=dict)
    proxy: RoundRobinProxy = field(default_factory=RoundRobinProxy)
    counter: HandledCounter = field(default_factory=HandledCounter)
    replicas: list[Replica] = field(default_factory=list)

    def settings(self) -> Settings:
        overrides = {"rate_limit": 0, **self.settings_overrides}
        return Settings(
            bot_token=SecretStr(self.server.token),
            telegram_api_url=self.server.url,
            database_url=self.database_url,
            mode=RunMode.WEBHOOK,
            webhook_url=self.proxy.url,
            webhook_secret=SecretStr(WEBHOOK_SECRET),
            **overrides,
        )

    async def start(self, replicas: int) -> None:
        await self.proxy.start()
        for _ in range(replicas):
            self.replicas.append(await self._start_replica())
        self.proxy.targets = [replica.url for replica in self.replicas]
        bot = self.replicas[0].bot
        await bot.set_webhook(self.proxy.url, secret_token=WEBHOOK_SECRET)

    async def _start_replica(self) -> Replica:
        settings = self.settings()
        engine = create_engine(self.database_url, schema=self.schema)
        bot = create_bot(settings)
        dispatcher = create_dispatcher(
            settings, create_sessionmaker(engine), self.keyring, outbox_policy=self.outbox_policy
        )
        dispatcher.update.outer_middleware(self.counter)
        # No grace period at shutdown: a replica that stops drops what it handles.
        runner = web.AppRunner(
            build_webhook_app(settings, bot, dispatcher), access_log=None, shutdown_timeout=0.0
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        return Replica(engine, bot, dispatcher, runner, f"http://{host}:{port}{PATH}")

    @property
    def database_engine(self) -> AsyncEngine:
        return self.replicas[0].engine

    async def stop(self) -> None:
        for replica in self.replicas:
            await replica.runner.cleanup()
            await replica.bot.session.close()
            await replica.engine.dispose()
        self.replicas = []
        await self.proxy.stop()


class CountedCluster(Protocol):
    """What ``count_faults`` reads: replicas in this process or in their own
    (``bench/replica_procs.py``)."""

    @property
    def server(self) -> FakeTelegramServer: ...

    @property
    def counter(self) -> HandledCounter: ...

    @property
    def proxy(self) -> RoundRobinProxy: ...

    @property
    def database_engine(self) -> AsyncEngine: ...


@dataclass(frozen=True)
class FaultFigures:
    """What a fault cost; every figure but ``reports_completed`` should be 0."""

    reports_completed: int
    updates_lost: int
    updates_handled_twice: int
    notices_lost: int
    notices_sent_twice: int
    redeliveries: int

    def as_dict(self) -> dict[str, int]:
        return {
            "reports_completed": self.reports_completed,
            "updates_lost": self.updates_lost,
            "updates_handled_twice": self.updates_handled_twice,
            "notices_lost": self.notices_lost,
            "notices_sent_twice": self.notices_sent_twice,
            "redeliveries": self.redeliveries,
        }


async def count_faults(
    cluster: CountedCluster, references: list[str], coordinator_id: int, first_update: int
) -> FaultFigures:
    """Counts from the emulator (what Telegram sent and received) and the database.

    An update is lost when the emulator sent it and no replica committed its
    ``handled_updates`` row. A notice is the NEW_CASE message to the coordinator.
    """
    from sqlalchemy import select

    from storage.models import HandledUpdate

    server = cluster.server
    sent = set(range(first_update, server.last_update_id + 1))
    maker = create_sessionmaker(cluster.database_engine)
    async with maker() as session:
        committed = set(await session.scalars(select(HandledUpdate.update_id)))
    notices = [
        str(call.params.get("text"))
        for call in server.calls_for("sendMessage")
        if call.chat_id == coordinator_id
    ]
    per_case = Counter(
        reference for reference in references for text in notices if reference in text
    )
    return FaultFigures(
        reports_completed=len(set(references)),
        updates_lost=len(sent - committed),
        updates_handled_twice=sum(1 for n in cluster.counter.handled.values() if n > 1),
        notices_lost=sum(1 for reference in set(references) if per_case[reference] == 0),
        notices_sent_twice=sum(1 for reference in set(references) if per_case[reference] > 1),
        redeliveries=cluster.proxy.redeliveries,
    )
