"""Lawyers and coordinators: triage, case work and staff management."""

from aiogram import Router

from handlers.staff import cases, coordinator, dossier, join, reopen


def build_staff_router() -> Router:
    router = Router(name="staff")
    router.include_routers(
        join.build_router(),
        coordinator.build_router(),
        cases.build_router(),
        dossier.build_router(),
        reopen.build_router(),
    )
    return router
