"""Clearing what abandoned drafts left behind.

Telegram lets a bot delete messages only for 48 hours. A reporter who stops
half-way leaves prompts and answers in the chat; once a draft has been idle
for ``wipe_after`` (well inside that window) those messages are deleted, and
drafts past their lifetime are removed. Safe to run in several processes.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError

from bot.intake.flow import IntakeState
from bot.intake.news import DRAFT_KEY, STATUS_SCREEN_KEY, NewsDraft, message_ids
from storage.fsm import EncryptedFSMStorage

log = logging.getLogger("intake.sweeper")

DELETE_BATCH = 100


class DraftSweeper:
    def __init__(
        self, storage: EncryptedFSMStorage, wipe_after: timedelta, *, wipe_chat: bool = True
    ) -> None:
        self.storage = storage
        self.wipe_after = wipe_after
        self.wipe_chat = wipe_chat

    async def sweep_once(self, bot: Bot) -> int:
        """Delete the chat leftovers of idle drafts, then expired drafts; returns messages."""
        deleted = 0
        idle = await self.storage.idle_drafts(self.wipe_after) if self.wipe_chat else []
        for index, payload in idle:
            data = payload.get("data")
            chat_id = payload.get("chat")
            if not isinstance(data, dict) or not isinstance(chat_id, int):
                continue
            intake = IntakeState.from_dict(data.get("intake"))
            # News being written about a sent report keeps its own trail, and the
            # /status exchanges it may start from are kept beside it.
            news = NewsDraft.from_dict(data.get(DRAFT_KEY))
            status_screens = message_ids(data.get(STATUS_SCREEN_KEY))
            trail = [*intake.trail, *(news.trail if news else []), *status_screens]
            if not trail:
                continue
            for start in range(0, len(trail), DELETE_BATCH):
                try:
                    await bot.delete_messages(chat_id, trail[start : start + DELETE_BATCH])
                except TelegramAPIError as exc:
                    log.warning("sweeper could not delete messages: %s", type(exc).__name__)
            deleted += len(trail)
            if "intake" in data:
                intake.trail = []
                data["intake"] = intake.to_dict()
            if news is not None:
                news.trail = []
                data[DRAFT_KEY] = news.to_dict()
            data.pop(STATUS_SCREEN_KEY, None)
            await self.storage.replace_payload(index, payload)
        expired = await self.storage.delete_expired()
        if deleted or expired:
            log.info("sweeper: %d messages deleted, %d drafts expired", deleted, expired)
        return deleted
