"""Fake Telegram Bot API server and simulated users for tests, benchmarks and demos.

Import from here: the modules behind it (one per Bot API area, see ``routing.py``) may move.
"""

from devkit.emulator.formatting import button_label, check_html, html_to_plain
from devkit.emulator.params import decode_params
from devkit.emulator.records import (
    ApiError,
    CallbackAnswer,
    ChatMessage,
    ChatState,
    FaultKind,
    FileRecord,
    JsonDict,
    RecordedCall,
    UploadedFile,
    WebhookState,
)
from devkit.emulator.routing import EmulatorSession, FakeTelegramServer
from devkit.emulator.simulator import SimulatedUser

__all__ = [
    "ApiError",
    "CallbackAnswer",
    "ChatMessage",
    "ChatState",
    "EmulatorSession",
    "FakeTelegramServer",
    "FaultKind",
    "FileRecord",
    "JsonDict",
    "RecordedCall",
    "SimulatedUser",
    "UploadedFile",
    "WebhookState",
    "button_label",
    "check_html",
    "decode_params",
    "html_to_plain",
]
