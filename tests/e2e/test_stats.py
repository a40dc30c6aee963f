"""/stats end to end: reports sent through the bot are counted; a damaged tally is refused."""

from __future__ import annotations

from sqlalchemy import func, select, update

from bot.cases import stats as case_stats
from bot.text import N_
from devkit.sandbox import Sandbox
from devkit.scripted_reporter import ScriptedReporter, t
from storage.models import AuditEntry, StatsTally
from tests.e2e.conftest import COORDINATOR_ID
from tests.e2e.helpers import stored_case
from tests.e2e.staff_helpers import STAFF_LANGUAGE, tr

REFUSAL = N_(
    "The figures cannot be shown: the stored statistics are damaged. Tell the administrator."
)


async def _send(sandbox: Sandbox, user_id: int, plan: dict[str, object]) -> str:
    reporter = ScriptedReporter(sandbox.user(user_id), "ru")
    await reporter.open()
    await reporter.fill(plan)
    return await reporter.submit()


async def _stats_views(sandbox: Sandbox) -> int:
    async with sandbox.sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "stats_view")
        )
    return int(count or 0)


async def test_stats_counts_sent_reports_and_refuses_a_damaged_tally(sandbox: Sandbox) -> None:
    await _send(sandbox, 748_001, {"region": "khatlon", "agency": ["anticorr", "drugs"]})
    await _send(sandbox, 748_002, {"region": "khatlon", "agency": ["drugs"]})
    coordinator = sandbox.user(COORDINATOR_ID)

    await coordinator.send_command("/stats")
    async with sandbox.sessionmaker() as session:
        figures = await case_stats.compute(session, sandbox.keyring)
    assert figures.total == 2
    assert figures.by_region["khatlon"] == 2
    assert figures.by_agency["drugs"] == 2 and figures.by_agency["anticorr"] == 1
    text_message, chart = coordinator.bot_messages()[-2:]
    assert text_message.body == case_stats.render_text(figures, tr(STAFF_LANGUAGE))
    assert chart.kind == "photo"
    assert await _stats_views(sandbox) == 1

    # Someone with the database flips one bit of the sealed tally.
    async with sandbox.sessionmaker.begin() as session:
        tally = await session.get(StatsTally, case_stats.TALLY_NAME)
        assert tally is not None and tally.payload_sealed is not None
        damaged = bytearray(tally.payload_sealed)
        damaged[-1] ^= 0x80
        await session.execute(
            update(StatsTally)
            .where(StatsTally.name == case_stats.TALLY_NAME)
            .values(payload_sealed=bytes(damaged))
        )
    photos = len(sandbox.server.calls_for("sendPhoto"))
    await coordinator.send_command("/stats")
    assert coordinator.last_text() == t(REFUSAL, STAFF_LANGUAGE)
    assert len(sandbox.server.calls_for("sendPhoto")) == photos  # no chart of wrong figures
    assert await _stats_views(sandbox) == 1  # nothing was shown, nothing audited

    # Reports are still accepted meanwhile.
    reference = await _send(sandbox, 748_003, {"region": "gbao"})
    case, answers = await stored_case(sandbox, reference)
    assert case.stats_consent and answers["region"] == "gbao"
