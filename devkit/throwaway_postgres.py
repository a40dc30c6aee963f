"""A PostgreSQL server of our own in a temporary folder, to restart at will.

The fault "PostgreSQL restarts" must never touch a shared server (other tests
and people use it), so this starts a private one with ``initdb`` and
``pg_ctl`` on a free port (trust authentication, 127.0.0.1 and a socket in the
folder only). As root the tools run as the ``postgres`` user.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
from pathlib import Path

BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ThrowawayPostgres:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="intake-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    async def _tool(self, *args: str) -> None:
        command = [str(BIN / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        _, stderr = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {stderr.decode(errors='replace')[-500:]}")

    def _options(self) -> str:
        return f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"

    async def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        await self._tool("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")
        await self._tool("pg_ctl", "-D", str(self.data), "-o", self._options(), "-w", "start")

    async def restart(self) -> None:
        """A fast restart: every connection is dropped, the data stays."""
        await self._tool(
            "pg_ctl", "-D", str(self.data), "-o", self._options(), "-m", "fast", "-w", "restart"
        )

    async def stop(self) -> None:
        try:
            await self._tool("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
