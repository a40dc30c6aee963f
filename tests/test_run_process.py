"""`intake-bot run` as a real process, polling the Bot API emulator over HTTP.

The second test runs the process exactly as docker-compose.yml describes it
(its environment, secrets folder and PostgreSQL), without Docker.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import stat
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import yaml

from devkit.emulator import FakeTelegramServer, SimulatedUser, WebhookState
from storage.crypto.keyfile import KeyMaterial, write_key_file
from tests.conftest import POSTGRES_URL, require_postgres_async

REPO = Path(__file__).resolve().parents[1]


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    env["PYTHONPATH"] = str(REPO)
    return env


async def _cli(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=cwd, env=env, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    return int(process.returncode or 0), stderr.decode()


async def _run_and_answer_start(
    server: FakeTelegramServer, env: dict[str, str], cwd: Path
) -> tuple[int, str]:
    """Start `intake-bot run`, check it answers /start, stop it with SIGINT."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await server.wait_for(lambda s: bool(s.calls_for("getUpdates")), timeout=90)
        user = SimulatedUser(server, user_id=424_242, wait=False)
        await user.send_command("/start")
        await server.wait_for(lambda s: bool(user.bot_messages()), timeout=30)
        assert "Тоҷикӣ" in str(user.buttons())
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    output = stderr.decode() + stdout.decode()
    assert "424242" not in output
    return int(process.returncode or 0), output


async def test_run_creates_keys_migrates_polls_and_answers_start(tmp_path: Path) -> None:
    async with FakeTelegramServer() as server:
        env = _base_env() | {
            "INTAKE_BOT_TOKEN": server.token,
            "INTAKE_TELEGRAM_API_URL": server.url,
        }
        code, output = await _run_and_answer_start(server, env, tmp_path)
    assert code == 0, output
    key_file = tmp_path / "data" / "keys.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "Back it up now" in output
    assert (tmp_path / "data" / "intake.db").exists()


def compose() -> dict[str, object]:
    loaded = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_compose_describes_bot_and_postgres_with_secrets_and_healthchecks() -> None:
    from bot.config import Settings

    spec = compose()
    services = spec["services"]
    assert isinstance(services, dict)
    assert {name for name, service in services.items() if not service.get("profiles")} == {
        "bot",
        "postgres",
    }
    bot, postgres = services["bot"], services["postgres"]
    assert bot["command"] == ["run"]
    assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert bot["healthcheck"]["test"] == ["CMD", "intake-bot", "health"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert {"intake_bot_token", "intake_keys"} <= set(bot["secrets"])
    known = {f"INTAKE_{name.upper()}" for name in Settings.model_fields} | {"INTAKE_SECRETS_DIR"}
    assert set(bot["environment"]) <= known
    assert "INTAKE_BOT_TOKEN" not in bot["environment"]
    assert bot["environment"]["INTAKE_DATABASE_URL"].startswith("postgresql+asyncpg://")
    dockerfile = (REPO / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (REPO / source).exists(), source


async def test_the_compose_configuration_runs_without_docker(tmp_path: Path) -> None:
    import asyncpg

    await require_postgres_async()
    bot_env = compose()["services"]["bot"]["environment"]  # type: ignore[index]
    database = f"intake_{secrets.token_hex(5)}"
    admin_dsn = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://", 1)
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{database}"')
    try:
        secrets_dir = tmp_path / "run-secrets"
        secrets_dir.mkdir()
        write_key_file(secrets_dir / "intake_keys", KeyMaterial.generate(), exclusive=True)
        (secrets_dir / "postgres_password").write_text("unused-with-trust-auth")
        async with FakeTelegramServer() as server:
            (secrets_dir / "intake_bot_token").write_text(server.token)
            env = _base_env()
            for name, value in bot_env.items():
                text = str(value).replace("/run/secrets", str(secrets_dir))
                text = text.replace(
                    "intake@postgres:5432/intake", f"postgres@127.0.0.1:5432/{database}"
                )
                env[name] = text
            env["INTAKE_COORDINATOR_IDS"] = "1"
            env["INTAKE_TELEGRAM_API_URL"] = server.url

            assert await _cli(env, tmp_path, "migrate") == (0, "")
            code, stderr = await _cli(env, tmp_path, "health")
            assert code == 0, stderr
            code, output = await _run_and_answer_start(server, env, tmp_path)
            assert code == 0, output
        assert not (tmp_path / "data").exists()
        tables = await asyncpg.connect(admin_dsn.rsplit("/", 1)[0] + f"/{database}")
        try:
            assert await tables.fetchval("SELECT count(*) FROM users") >= 2
        finally:
            await tables.close()
    finally:
        await admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
        await admin.close()


async def test_health_fails_without_a_database(tmp_path: Path) -> None:
    write_key_file(tmp_path / "keys.json", KeyMaterial.generate(), exclusive=True)
    env = _base_env() | {
        "INTAKE_KEY_FILE": str(tmp_path / "keys.json"),
        "INTAKE_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none",
    }
    code, stderr = await _cli(env, tmp_path, "health")
    assert code == 1
    assert "database unreachable" in stderr


@asynccontextmanager
async def _polling(
    server: FakeTelegramServer, env: dict[str, str], cwd: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``intake-bot run`` in polling mode, from its first getUpdates until SIGINT."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await server.wait_for(lambda s: bool(s.calls_for("getUpdates")), timeout=90)
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.communicate(), timeout=60)


async def test_a_second_process_on_the_same_sqlite_file_is_refused(tmp_path: Path) -> None:
    async with FakeTelegramServer() as server:
        env = _base_env() | {
            "INTAKE_BOT_TOKEN": server.token,
            "INTAKE_TELEGRAM_API_URL": server.url,
        }
        async with _polling(server, env, tmp_path) as first:
            polls = len(server.calls_for("deleteWebhook"))
            code, stderr = await _cli(env, tmp_path, "run")
            assert len(server.calls_for("deleteWebhook")) == polls  # it never started
    assert code == 2
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "in use by another intake-bot process" in lines[0]
    assert "PostgreSQL" in lines[0]
    assert first.returncode == 0


async def test_polling_takes_back_a_webhook_set_with_a_stolen_token(tmp_path: Path) -> None:
    """The runbook's "The bot token leaked": a restart in polling mode deletes a
    webhook that someone holding the old token pointed elsewhere."""
    async with FakeTelegramServer() as server:
        server.webhook = WebhookState(url="https://attacker.example/hook")
        env = _base_env() | {
            "INTAKE_BOT_TOKEN": server.token,
            "INTAKE_TELEGRAM_API_URL": server.url,
        }
        async with _polling(server, env, tmp_path) as process:
            assert server.webhook.url == ""
    assert process.returncode == 0


def test_compose_scale_profile_has_three_webhook_replicas_behind_a_proxy() -> None:
    from compose_spec import PyCompose

    from bot.config import Settings

    parsed = PyCompose.from_yaml((REPO / "docker-compose.yml").read_text()).to_spec()
    services = parsed.services or {}
    scale = {name for name, service in services.items() if "scale" in (service.profiles or [])}
    assert scale == {"bot-1", "bot-2", "bot-3", "proxy"}
    known = {f"INTAKE_{name.upper()}" for name in Settings.model_fields} | {"INTAKE_SECRETS_DIR"}
    for name in ("bot-1", "bot-2", "bot-3"):
        replica = services[name]
        environment = replica.environment
        assert isinstance(environment, dict)
        assert set(environment) <= known
        assert environment["INTAKE_MODE"] == "webhook"
        assert str(environment["INTAKE_DATABASE_URL"]).startswith("postgresql+asyncpg://")
        assert int(str(environment["INTAKE_WEBHOOK_MAX_CONNECTIONS"])) == 3 * 10
        secrets = {str(getattr(s, "source", s)) for s in replica.secrets or []}
        assert {"intake_bot_token", "intake_keys", "intake_webhook_secret"} <= secrets
        assert replica.ports is None  # reached through the proxy only
    proxy = services["proxy"]
    assert str(proxy.image).startswith("nginx:")
    config = (REPO / "deploy" / "nginx.conf").read_text()
    for name in ("bot-1", "bot-2", "bot-3"):
        assert f"server {name}:8080" in config
    assert "listen 443 ssl" in config
