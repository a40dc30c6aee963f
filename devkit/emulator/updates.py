"""Updates: the getUpdates queue, its confirmations, and the webhook settings."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
from typing import Any, Final

from devkit.emulator.params import Params
from devkit.emulator.records import (
    ApiError,
    CallbackQueryState,
    ChatState,
    JsonDict,
    WebhookState,
    bad_request,
)
from devkit.emulator.state import EmulatorState

WEBHOOK_CONFLICT: Final = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
_SECRET_RE: Final = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class UpdateMethods(EmulatorState):
    """Updates queued for the bot, getUpdates (long polling) and set/delete/getWebhook."""

    def push_update(self, update: JsonDict) -> int:
        """Queue an update for getUpdates; returns its (newly assigned) update_id."""
        update_id, stored = self._prepare_update(update)
        self._updates.append((update_id, stored))
        self._update_event.set()
        self._notify()
        return update_id

    @property
    def last_update_id(self) -> int:
        """The update_id assigned most recently (0 before the first update)."""
        return self._next_update_id - 1

    @property
    def pending_update_count(self) -> int:
        return len(self._updates)

    def is_processed(self, update_id: int) -> bool:
        return update_id < self._confirmed_below

    async def wait_processed(self, update_id: int, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until getUpdates was called with an offset > update_id."""
        if update_id < self._confirmed_below:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._processed_waiters.setdefault(update_id, [])
        waiters.append(future)
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            last_poll = (
                "never"
                if self.last_poll_at is None
                else f"{self.now() - self.last_poll_at:.1f}s ago"
            )
            msg = (
                f"update {update_id} was not confirmed by the bot within {timeout}s "
                f"(confirmed below {self._confirmed_below}, {len(self._updates)} pending, "
                f"last getUpdates {last_poll}); is polling running with "
                "handle_as_tasks=False, and did the handler finish?"
            )
            raise TimeoutError(msg) from None
        finally:
            with contextlib.suppress(ValueError):
                waiters.remove(future)
            if not waiters:
                self._processed_waiters.pop(update_id, None)

    def _prepare_update(self, update: JsonDict) -> tuple[int, JsonDict]:
        update_id = self._next_update_id
        self._next_update_id += 1
        stored = dict(update)
        stored["update_id"] = update_id
        callback = stored.get("callback_query")
        if isinstance(callback, dict):
            sender = callback.get("from")
            if isinstance(sender, dict) and isinstance(callback.get("id"), str):
                self._callback_queries[callback["id"]] = CallbackQueryState(
                    user_id=int(sender["id"])
                )
        for key in ("message", "edited_message"):
            message = stored.get(key)
            if isinstance(message, dict):
                self._ensure_chat_from_message(message)
        return update_id, stored

    def _ensure_chat_from_message(self, message: JsonDict) -> None:
        chat = message.get("chat")
        sender = message.get("from")
        if not isinstance(chat, dict) or chat.get("type") != "private":
            return
        if not isinstance(sender, dict) or sender.get("is_bot"):
            return
        chat_id = chat.get("id")
        if isinstance(chat_id, int) and chat_id not in self._chats:
            self._chats[chat_id] = ChatState(chat_id=chat_id, user=dict(sender))
            username = sender.get("username")
            if isinstance(username, str):
                self._chats_by_username[username.lower()] = chat_id

    def _confirm(self, offset: int) -> None:
        if offset < 0:
            while len(self._updates) > -offset:
                self._updates.popleft()
            boundary = self._updates[0][0] if self._updates else self._next_update_id
        else:
            while self._updates and self._updates[0][0] < offset:
                self._updates.popleft()
            boundary = offset
        self._mark_confirmed(boundary)

    def _mark_confirmed(self, boundary: int) -> None:
        boundary = min(boundary, self._next_update_id)
        if boundary <= self._confirmed_below:
            return
        if self._processed_waiters:
            for update_id in range(self._confirmed_below, boundary):
                for future in self._processed_waiters.pop(update_id, ()):
                    if not future.done():
                        future.set_result(None)
        self._confirmed_below = boundary

    def _drop_pending_updates(self) -> None:
        self._updates.clear()
        self._mark_confirmed(self._next_update_id)

    async def _m_get_updates(self, params: Params) -> Any:
        if self.webhook.url:
            raise ApiError(409, WEBHOOK_CONFLICT)
        offset = params.opt_int("offset")
        limit = params.opt_int("limit") or 100
        limit = max(1, min(100, limit))
        timeout = max(0.0, params.opt_float("timeout") or 0.0)
        if offset:
            self._confirm(offset)
        self.last_poll_at = self.now()
        if not self._updates and timeout > 0 and not self._closing.is_set():
            self._update_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._update_event.wait(), timeout)
        return [update for _, update in itertools.islice(self._updates, limit)]

    async def _m_set_webhook(self, params: Params) -> Any:
        url = params.opt_str("url") or ""
        secret = params.opt_str("secret_token")
        if secret is not None and not _SECRET_RE.match(secret):
            raise bad_request("secret token contains unallowed characters")
        if params.opt_bool("drop_pending_updates"):
            self._drop_pending_updates()
        allowed = params.opt_list("allowed_updates")
        self.webhook = WebhookState(
            url=url,
            secret_token=secret if url else None,
            allowed_updates=[str(item) for item in allowed] if allowed is not None else None,
            max_connections=params.opt_int("max_connections"),
        )
        return True

    async def _m_delete_webhook(self, params: Params) -> Any:
        if params.opt_bool("drop_pending_updates"):
            self._drop_pending_updates()
        self.webhook = WebhookState()
        return True

    async def _m_get_webhook_info(self, params: Params) -> Any:
        info: JsonDict = {
            "url": self.webhook.url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook.url:
            info["max_connections"] = self.webhook.max_connections or 40
            if self.webhook.allowed_updates is not None:
                info["allowed_updates"] = self.webhook.allowed_updates
            if self.webhook.last_error_date is not None:
                info["last_error_date"] = self.webhook.last_error_date
                info["last_error_message"] = self.webhook.last_error_message
        return info
