"""Fake Telegram Bot API server and simulated users for tests, benchmarks and demos."""

from devkit.emulator.server import (
    ApiError,
    CallbackAnswer,
    ChatMessage,
    ChatState,
    EmulatorSession,
    FakeTelegramServer,
    FaultKind,
    FileRecord,
    RecordedCall,
    UploadedFile,
    WebhookState,
)
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
    "RecordedCall",
    "SimulatedUser",
    "UploadedFile",
    "WebhookState",
]
