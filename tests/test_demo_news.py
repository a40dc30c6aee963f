"""``make demo`` shows news after the report: /status, the button, the flow, the notice."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.intake.news import NEWS_LABELS, NewsKind
from bot.notifications import Notice, NoticeKind, render_notice
from bot.text import N_
from devkit.demo import DemoSession
from devkit.scripted_reporter import ScriptedReporter, t
from tests.e2e.staff_helpers import STAFF_LANGUAGE


@pytest.fixture
async def demo() -> AsyncIterator[DemoSession]:
    session = DemoSession()
    try:
        yield session
    finally:
        await session.close()


def _press(demo: DemoSession, label: str) -> str:
    keyboard = demo.current_keyboard()
    assert keyboard is not None
    labels = [text for row in keyboard.button_labels for text in row]
    return str(labels.index(label) + 1)


def ru(msgid: str) -> str:
    return t(msgid, "ru")


async def test_news_after_the_report_in_the_demo(demo: DemoSession) -> None:
    await demo.start()
    reporter = ScriptedReporter(demo.reporter, "ru")
    await reporter.open()
    await reporter.fill({"reporter": "victim", "account": "Меня били три дня."})
    reference = await reporter.submit()
    demo.render_changes()  # what the scripted reporter did is not under test

    status = await demo.handle("/status")
    add = ru(N_("Add news: {reference}")).format(reference=reference)
    assert add in status
    kinds = await demo.handle(_press(demo, add))
    assert ru(NEWS_LABELS[NewsKind.HOSPITAL]) in kinds
    await demo.handle(_press(demo, ru(NEWS_LABELS[NewsKind.HOSPITAL])))
    await demo.handle("Его увезли в больницу.")
    review = await demo.handle(_press(demo, ru(N_("Done"))))
    assert "Его увезли в больницу." in review
    sent = await demo.handle(_press(demo, ru(N_("Send"))))
    thanks = ru(N_("Thank you. Your news has been added to report {reference}."))
    assert thanks.format(reference=reference) in sent
    notice = render_notice(
        Notice(NoticeKind.REPORTER_NEWS, reference, urgent=True, news="hospital"),
        lambda msgid: t(msgid, STAFF_LANGUAGE),
    )
    assert f"[to coordinator] {notice}" in sent
    # Only the receipts are left in the reporter's chat: the words went with the flow.
    assert all("больницу" not in (m.body or "") for m in demo.reporter.visible_messages())
