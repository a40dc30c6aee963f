"""Commands and chat settings: getMe, the command menus, names and descriptions."""

from __future__ import annotations

import json
import re
from typing import Any, Final

from devkit.emulator.params import Handler, Params
from devkit.emulator.records import JsonDict, bad_request
from devkit.emulator.state import EmulatorState

_COMMAND_RE: Final = re.compile(r"^[a-z0-9_]{1,32}$")


class CommandMethods(EmulatorState):
    """The bot's own settings: who it is, its command menus per scope and language."""

    async def _m_get_me(self, params: Params) -> Any:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _command_key(self, params: Params) -> tuple[str, str]:
        scope = params.opt_dict("scope") or {"type": "default"}
        if scope.get("type") == "chat":
            chat_id = scope.get("chat_id")
            if not isinstance(chat_id, int) or chat_id not in self._chats:
                raise bad_request("chat not found")
        return json.dumps(scope, sort_keys=True), params.opt_str("language_code") or ""

    async def _m_set_my_commands(self, params: Params) -> Any:
        commands = params.opt_list("commands")
        if commands is None:
            raise bad_request("commands is empty")
        if len(commands) > 100:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        stored: list[JsonDict] = []
        for command in commands:
            if not isinstance(command, dict):
                raise bad_request("can't parse BotCommand")
            name = command.get("command")
            description = command.get("description")
            if not isinstance(name, str) or not _COMMAND_RE.match(name):
                raise bad_request("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            stored.append({"command": name, "description": description})
        key = self._command_key(params)
        if stored:
            self._commands[key] = stored
        else:
            self._commands.pop(key, None)
        return True

    async def _m_delete_my_commands(self, params: Params) -> Any:
        self._commands.pop(self._command_key(params), None)
        return True

    async def _m_get_my_commands(self, params: Params) -> Any:
        return [dict(command) for command in self._commands.get(self._command_key(params), [])]

    def get_commands(
        self, scope: JsonDict | None = None, language_code: str = ""
    ) -> list[JsonDict]:
        """Commands stored for a scope (default scope when None) and language."""
        key = json.dumps(scope or {"type": "default"}, sort_keys=True), language_code
        return [dict(command) for command in self._commands.get(key, [])]

    def _description_setter(self, key: str) -> Handler:
        async def handler(params: Params) -> Any:
            language = params.opt_str("language_code") or ""
            self.descriptions.setdefault(key, {})[language] = params.opt_str(key) or ""
            return True

        return handler
