"""Lawyers and coordinators: triage, case work and staff management."""

from aiogram import Router

from handlers.staff import cases, coordinator, dossier, join, reopen
from handlers.staff.gate import StaffGate


def build_staff_router() -> Router:
    router = Router(name="staff")
    # The PIN lock, enforced once for every staff message and button.
    gate = StaffGate()
    router.message.outer_middleware(gate)
    router.callback_query.outer_middleware(gate)
    router.include_routers(
        join.build_router(),
        coordinator.build_router(),
        cases.build_router(),
        dossier.build_router(),
        reopen.build_router(),
    )
    return router
