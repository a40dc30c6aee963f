"""aiogram routers, one per audience; the order of inclusion is the order of matching."""

from aiogram import Router

from handlers.common import fallback
from handlers.reporter import build_reporter_router


def build_root_router() -> Router:
    root = Router(name="root")
    root.include_routers(build_reporter_router(), fallback.build_router())
    return root
