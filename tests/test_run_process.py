"""`intake-bot run` as a real process, polling the Bot API emulator over HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import sys
from pathlib import Path

from bot.emulator import FakeTelegramServer, SimulatedUser

REPO = Path(__file__).resolve().parents[1]


async def test_run_creates_keys_migrates_polls_and_answers_start(tmp_path: Path) -> None:
    async with FakeTelegramServer() as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
        env.update(
            PYTHONPATH=str(REPO),
            INTAKE_BOT_TOKEN=server.token,
            INTAKE_TELEGRAM_API_URL=server.url,
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await server.wait_for(lambda s: bool(s.calls_for("getUpdates")), timeout=60)
            user = SimulatedUser(server, user_id=424_242, wait=False)
            await user.send_command("/start")
            await server.wait_for(lambda s: bool(user.bot_messages()), timeout=30)
            assert "Тоҷикӣ" in str(user.buttons())
        finally:
            process.send_signal(signal.SIGINT)
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)

    assert process.returncode == 0, stderr.decode()
    key_file = tmp_path / "data" / "keys.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "Back it up now" in stderr.decode()
    assert (tmp_path / "data" / "intake.db").exists()
    assert "424242" not in stderr.decode() + stdout.decode()
