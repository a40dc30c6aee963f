"""Settings, read from the environment (prefix ``INTAKE_``) and a ``.env`` file.

The names are a public interface documented in the README; keep them stable.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.speedups import EventLoopChoice, installed

OFFICIAL_API_URL = "https://api.telegram.org"

#: Updates handled at once by one process, in polling and webhook mode alike:
#: below the database pool size, since unbounded update tasks exhausted the
#: pool and lost reports (docs/performance.md).
UPDATE_CONCURRENCY = 10

# Telegram's alphabet for the secret token; 32 characters at least, since the
# secret is all that stands between the internet and the webhook.
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{32,256}")
HOW_TO_MAKE_A_WEBHOOK_KEY = (
    "INTAKE_WEBHOOK_SECRET: must be 32 to 256 characters of A-Z a-z 0-9 _ -; make one with: "
    'python -c "import secrets; print(secrets.token_urlsafe(48))"'
)


class RunMode(StrEnum):
    POLLING = "polling"
    WEBHOOK = "webhook"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="INTAKE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    bot_token: SecretStr | None = None
    telegram_api_url: str = OFFICIAL_API_URL
    database_url: str = "sqlite+aiosqlite:///data/intake.db"
    database_password_file: Path | None = None
    key_file: Path = Path("data/keys.json")
    coordinator_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    mode: RunMode = RunMode.POLLING
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_host: str = "127.0.0.1"
    webhook_port: int = Field(default=8080, ge=1, le=65535)
    # Connections Telegram may open to the webhook, for all replicas together.
    webhook_max_connections: int = Field(default=UPDATE_CONCURRENCY, ge=1, le=100)
    log_level: str = "INFO"
    draft_ttl_hours: int = Field(default=24, ge=1, le=47)
    wipe_chat: bool = True
    wipe_idle_minutes: int = Field(default=360, ge=1, le=24 * 60)
    sweep_interval_seconds: float = Field(default=300.0, gt=0)
    self_assign: bool = True
    rate_limit: int = Field(default=20, ge=0)
    rate_window_seconds: float = Field(default=10.0, gt=0)
    intake_per_minute: int = Field(default=30, ge=0)
    retention_days: int = Field(default=180, ge=1)
    # Telegram's Bot API lets bots download files up to 20 MB (more only with a
    # self-hosted Bot API server); evidence larger than this is refused.
    max_download_mb: int = Field(default=20, ge=1, le=2000)
    # A folder with the coalition's own dossier templates (dossier.tg.j2,
    # dossier.ru.j2); those not found there come from bot/templates/.
    dossier_template_dir: Path | None = None
    # News a reporter may add to one case after sending it (bot/cases/followups.py).
    followups_per_day: int = Field(default=3, ge=1)
    followups_total: int = Field(default=20, ge=1)
    # Evidence one sender may send in a UTC day, all reports and replies together;
    # counted under a blind index that /forget does not reset.
    evidence_mb_per_day: int = Field(default=200, ge=1)
    # How long a case keeps the sealed handle that lets /ban REF find its sender
    # after the reporter used /forget.
    abuse_handle_days: int = Field(default=7, ge=1, le=90)
    # Staff PIN lock: how long an unlock lasts after the last staff
    # action, and how long a message with case content stays in a staff chat
    # (Telegram lets a bot delete its messages for 48 hours only).
    staff_unlock_minutes: int = Field(default=15, ge=1, le=24 * 60)
    staff_view_ttl_minutes: int = Field(default=30, ge=1, le=47 * 60)
    # The `speed` extra (bot/speedups.py): "auto" uses uvloop when it is installed.
    event_loop: EventLoopChoice = "auto"

    @field_validator("coordinator_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            return frozenset(int(p) for p in parts)
        if isinstance(value, int):
            return frozenset({value})
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("telegram_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("event_loop")
    @classmethod
    def _installed(cls, value: str) -> str:
        if value == "uvloop" and not installed(value):
            raise ValueError(f"{value} is not installed: pip install 'intake-bot[speed]'")
        return value

    @model_validator(mode="after")
    def _webhook_complete(self) -> Settings:
        if self.mode is RunMode.WEBHOOK:
            if not self.webhook_url:
                raise ValueError("INTAKE_WEBHOOK_URL: required when INTAKE_MODE=webhook")
            if self.webhook_secret is None or not self.webhook_secret.get_secret_value():
                raise ValueError("INTAKE_WEBHOOK_SECRET: required when INTAKE_MODE=webhook")
            if not _WEBHOOK_SECRET.fullmatch(self.webhook_secret.get_secret_value()):
                raise ValueError(HOW_TO_MAKE_A_WEBHOOK_KEY)
        return self

    @property
    def max_download_bytes(self) -> int:
        return self.max_download_mb * 1024 * 1024

    @property
    def evidence_bytes_per_day(self) -> int:
        return self.evidence_mb_per_day * 1024 * 1024

    @property
    def draft_ttl_seconds(self) -> int:
        return self.draft_ttl_hours * 3600

    def database_dsn(self) -> str:
        """The database URL, with the password from its secret file when one is given."""
        if self.database_password_file is None:
            return self.database_url
        from sqlalchemy.engine import make_url

        password = self.database_password_file.read_text(encoding="utf-8").strip()
        url = make_url(self.database_url).set(password=password)
        return url.render_as_string(hide_password=False)


class SettingsError(Exception):
    """A setting is missing or malformed; the message names it in one line."""


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, ``.env`` and, with ``INTAKE_SECRETS_DIR``, secret files.

    In the secrets folder a file named after a setting (``intake_bot_token``)
    holds its value, as Docker and systemd credentials provide them.
    """
    import os

    from pydantic import ValidationError

    secrets_dir = os.environ.get("INTAKE_SECRETS_DIR")
    try:
        return Settings(_secrets_dir=secrets_dir or None, **overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        location = error.get("loc") or ()
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        if location:
            message = f"INTAKE_{str(location[0]).upper()}: {message}"
        raise SettingsError(message) from None
