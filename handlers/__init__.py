"""aiogram routers, one per audience; the order of inclusion is the order of matching."""

from aiogram import Router

from handlers.common import fallback
from handlers.reporter import build_reporter_router
from handlers.staff import build_staff_router


def build_root_router() -> Router:
    root = Router(name="root")
    # Staff routers first: their role filters let everyone else fall through to
    # the reporter's handlers, which never reveal that staff commands exist.
    root.include_routers(build_staff_router(), build_reporter_router(), fallback.build_router())
    return root
