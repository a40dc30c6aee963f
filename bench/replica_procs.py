"""Webhook replicas as separate OS processes behind the round-robin proxy.

The process form of ``devkit.replicas.ReplicaCluster``, for the ``faults``
section: each replica is ``bench.botproc --mode webhook`` (the real bot behind
``bot.webhook.build_webhook_app``, its own engine, pool and event loop), forked
by the benchmark's fork server. ``kill_and_restart`` sends SIGKILL to one of
them (no shutdown code runs: its HTTP connections and its PostgreSQL
connections, with their transactions and advisory locks, simply drop) and
starts a new process in its place. The proxy (``devkit.replicas.RoundRobinProxy``)
delivers an update again after a 5xx or a dropped connection, as Telegram does.
``counter.handled`` counts, per update id, the ``handled`` lines of every replica.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.harness import BotProcess
from devkit.emulator import FakeTelegramServer
from devkit.replicas import PATH, WEBHOOK_SECRET, HandledCounter, RoundRobinProxy
from storage.db import create_engine


@dataclass
class ProcessReplicaCluster:
    server: FakeTelegramServer
    key_file: Path
    database_url: str
    schema: str | None
    coordinators: tuple[int, ...]
    #: replica n logs to ``<log_prefix>-<n>.log``
    log_prefix: Path
    #: False: the replicas answer button presses by a call (``--answers-as-calls``)
    answer_in_response: bool = True
    #: the tests' outbox timings (``devkit.sandbox.FAST_OUTBOX``), else production's
    fast_outbox: bool = True
    proxy: RoundRobinProxy = field(default_factory=RoundRobinProxy)
    counter: HandledCounter = field(default_factory=HandledCounter)
    replicas: list[BotProcess] = field(default_factory=list)
    started: int = 0
    _engine: AsyncEngine | None = None

    @property
    def database_engine(self) -> AsyncEngine:
        """The harness's own engine, to count what the replicas committed."""
        if self._engine is None:
            self._engine = create_engine(self.database_url, schema=self.schema)
        return self._engine

    async def start(self, replicas: int) -> None:
        await self.proxy.start()
        for _ in range(replicas):
            self.replicas.append(await self._start_replica())
        self._route()
        api = TelegramAPIServer.from_base(self.server.url)
        async with Bot(self.server.token, session=AiohttpSession(api=api)) as bot:
            await bot.set_webhook(self.proxy.url, secret_token=WEBHOOK_SECRET)

    def _route(self) -> None:
        self.proxy.targets = [f"http://127.0.0.1:{replica.port}{PATH}" for replica in self.replicas]

    async def _start_replica(self) -> BotProcess:
        self.started += 1
        argv: tuple[str, ...] = ("--webhook-url", self.proxy.url)
        if self.fast_outbox:
            argv += ("--fast-outbox",)
        argv += ("--webhook-secret", WEBHOOK_SECRET, "--database-url", self.database_url)
        if self.schema:
            argv += ("--schema", self.schema)
        if not self.answer_in_response:
            argv += ("--answers-as-calls",)
        replica = BotProcess(
            "webhook",
            self.server,
            key_file=self.key_file,
            coordinators=self.coordinators,
            log_path=self.log_prefix.with_name(f"{self.log_prefix.name}-{self.started}.log"),
            extra_argv=argv,
            handled=self.counter.handled,
        )
        await replica.start()
        return replica

    async def kill_and_restart(self, index: int) -> int:
        """``kill -9`` replica ``index``, then start a new process in its place; its pid."""
        killed = self.replicas[index]
        pid = killed.pid
        await killed.kill()
        # Until the new one listens, the proxy's deliveries to the old port fail and
        # go to the next replica, as a load balancer's would.
        self.replicas[index] = await self._start_replica()
        self._route()
        return pid

    def cpu_seconds(self) -> float:
        return sum(self.cpu_by_replica())

    def cpu_by_replica(self) -> list[float]:
        return [replica.cpu_seconds() for replica in self.replicas]

    def error_lines(self) -> list[str]:
        return [line for replica in self.replicas for line in replica.error_lines()]

    async def stop(self) -> None:
        for replica in self.replicas:
            await replica.stop()
        self.replicas = []
        await self.proxy.stop()
        if self._engine is not None:
            await self._engine.dispose()
