"""Settings and the command line: clear one-line errors, exit code 2, key commands."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.config import RunMode, SettingsError, load_settings

REPO = Path(__file__).resolve().parents[1]


def test_defaults() -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite+aiosqlite:///data/intake.db"
    assert settings.key_file == Path("data/keys.json")
    assert settings.telegram_api_url == "https://api.telegram.org"
    assert settings.mode is RunMode.POLLING
    assert settings.coordinator_ids == frozenset()
    assert settings.draft_ttl_hours == 24
    assert settings.wipe_chat is True
    assert settings.self_assign is True
    assert settings.bot_token is None


def test_environment_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTAKE_BOT_TOKEN", "123:abc")
    monkeypatch.setenv("INTAKE_COORDINATOR_IDS", " 11, 22 ,33")
    monkeypatch.setenv("INTAKE_TELEGRAM_API_URL", "http://127.0.0.1:8081/")
    monkeypatch.setenv("INTAKE_DATABASE_URL", "postgresql+asyncpg://u@h/db")
    monkeypatch.setenv("INTAKE_LOG_LEVEL", "debug")
    settings = load_settings()
    assert settings.bot_token is not None
    assert settings.bot_token.get_secret_value() == "123:abc"
    assert "123:abc" not in repr(settings)
    assert settings.coordinator_ids == frozenset({11, 22, 33})
    assert settings.telegram_api_url == "http://127.0.0.1:8081"
    assert settings.log_level == "DEBUG"


def test_dotenv_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("INTAKE_COORDINATOR_IDS=7\nINTAKE_WIPE_CHAT=false\n")
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.coordinator_ids == frozenset({7})
    assert settings.wipe_chat is False


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("INTAKE_COORDINATOR_IDS", "12,abc"),
        ("INTAKE_DATABASE_URL", "mysql://x"),
        ("INTAKE_MODE", "carrier-pigeon"),
        ("INTAKE_WEBHOOK_PORT", "70000"),
        ("INTAKE_LOG_LEVEL", "LOUD"),
        ("INTAKE_TELEGRAM_API_URL", "ftp://x"),
        ("INTAKE_DRAFT_TTL_HOURS", "0"),
    ],
)
def test_a_bad_value_names_its_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(name + ":")
    assert "\n" not in message


def test_webhook_mode_needs_url_and_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTAKE_MODE", "webhook")
    with pytest.raises(SettingsError, match=r"^INTAKE_WEBHOOK_URL"):
        load_settings()
    monkeypatch.setenv("INTAKE_WEBHOOK_URL", "https://example.org/tg")
    with pytest.raises(SettingsError, match=r"^INTAKE_WEBHOOK_SECRET"):
        load_settings()
    monkeypatch.setenv("INTAKE_WEBHOOK_SECRET", "s3cret_" + "x" * 25)
    assert load_settings().mode is RunMode.WEBHOOK


@pytest.mark.parametrize(
    "secret",
    ["s3cret", "x" * 31, "x" * 257, "x" * 31 + " ", "x" * 31 + "ӣ", "x" * 31 + "/", "x" * 31 + "="],
)
def test_a_weak_webhook_secret_is_refused_saying_how_to_make_one(
    monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    monkeypatch.setenv("INTAKE_MODE", "webhook")
    monkeypatch.setenv("INTAKE_WEBHOOK_URL", "https://example.org/tg")
    monkeypatch.setenv("INTAKE_WEBHOOK_SECRET", secret)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("INTAKE_WEBHOOK_SECRET:") and "\n" not in message
    assert "secrets.token_urlsafe" in message
    assert secret not in message


@pytest.mark.parametrize("secret", ["A" * 32, "a-Z_0" * 51 + "9", "x" * 256])
def test_a_strong_webhook_secret_is_accepted(monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    monkeypatch.setenv("INTAKE_MODE", "webhook")
    monkeypatch.setenv("INTAKE_WEBHOOK_URL", "https://example.org/tg")
    monkeypatch.setenv("INTAKE_WEBHOOK_SECRET", secret)
    assert load_settings().webhook_secret is not None


def _cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    clean["PYTHONPATH"] = str(REPO)
    clean.update(env or {})
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_run_without_token_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    result = _cli("run", cwd=tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "INTAKE_BOT_TOKEN" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()


def test_bad_setting_exits_2_with_one_line(tmp_path: Path) -> None:
    result = _cli("migrate", cwd=tmp_path, env={"INTAKE_COORDINATOR_IDS": "x"})
    assert result.returncode == 2
    assert result.stderr.strip().startswith("intake-bot: INTAKE_COORDINATOR_IDS:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_keys_commands_end_to_end(tmp_path: Path) -> None:
    assert _cli("keys", "init", cwd=tmp_path).returncode == 0
    key_file = tmp_path / "data" / "keys.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    again = _cli("keys", "init", cwd=tmp_path)
    assert again.returncode == 2
    assert "already exists" in again.stderr

    assert _cli("migrate", cwd=tmp_path).returncode == 0
    assert (tmp_path / "data" / "intake.db").exists()
    status = _cli("keys", "status", cwd=tmp_path)
    assert status.returncode == 0
    assert "(primary)" in status.stdout
    assert "all values use the primary key" in status.stdout

    old_primary = status.stdout.split(" (primary)")[0].strip()
    rotated = _cli("keys", "rotate", cwd=tmp_path)
    assert rotated.returncode == 0, rotated.stderr
    status = _cli("keys", "status", cwd=tmp_path)
    assert status.stdout.count("kek-") == 2
    assert f"{old_primary} (primary)" not in status.stdout
    # Both receipt signing keys stay published: receipts signed before still verify.
    public = _cli("keys", "public", cwd=tmp_path)
    assert public.returncode == 0 and public.stdout.count("sig-") == 2
    assert _cli("keys", "drop", old_primary, cwd=tmp_path).returncode == 0
    assert _cli("keys", "status", cwd=tmp_path).stdout.count("kek-") == 1


def test_key_file_readable_by_others_is_refused_by_the_cli(tmp_path: Path) -> None:
    assert _cli("keys", "init", cwd=tmp_path).returncode == 0
    (tmp_path / "data" / "keys.json").chmod(0o644)
    result = _cli("keys", "status", cwd=tmp_path)
    assert result.returncode == 2
    assert "chmod 600" in result.stderr


def test_main_returns_2_in_process_without_token(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run"]) == 2
    assert "INTAKE_BOT_TOKEN" in capsys.readouterr().err


def test_run_refuses_a_new_key_file_for_a_database_with_data(tmp_path: Path) -> None:
    """A key file lost (say, on tmpfs after a reboot) must not be silently replaced."""
    assert _cli("migrate", cwd=tmp_path).returncode == 0
    import sqlite3

    with sqlite3.connect(tmp_path / "data" / "intake.db") as db:
        db.execute(
            "INSERT INTO users (id, tg_index, chat_sealed, role, banned, created_at, updated_at)"
            " VALUES ('00000000000040008000000000000001', x'00', x'00', NULL, 0,"
            " '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
        )
    (tmp_path / "data" / "keys.json").unlink()
    result = _cli("migrate", cwd=tmp_path)
    assert result.returncode == 2
    assert "restore the key file" in result.stderr
    assert not (tmp_path / "data" / "keys.json").exists()
