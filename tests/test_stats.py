"""The anonymous figures and the sealed statistics tally, on SQLite and PostgreSQL.

Cases go through ``submit_report`` (the transaction of a real submission), and
the expected figures are worked out here from the answers, independently of
``bot/cases/stats.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from bot.cases import stats as case_stats
from bot.intake.flow import CURRENT, Consent, IntakeState
from bot.intake.submission import submit_report
from bot.questionnaire import DONT_KNOW, SKIPPED, Draft
from bot.retention import shred_case
from storage import keys
from storage.crypto import DecryptionError, FieldContext, KeyRing, Purpose, peek_key_id
from storage.crypto.keyfile import KeyFileError, KeyMaterial, load_key_file, write_key_file
from storage.models import Case, StatsArchive, StatsTally
from storage.repositories import CaseRepository, UserRepository
from tests.canary import raw_database_bytes, scan
from tests.case_helpers import run_cli
from tests.conftest import Database, close_database, open_database

_reporters = itertools.count(930_001)

# (answers as the reporter gave them, statistics consent); multiple choices are
# stored sorted, as the questionnaire engine stores them.
REPORTS: list[tuple[dict[str, Any], bool]] = [
    ({"agency": ["gknb", "police"], "region": "sughd", "threats_now": "yes"}, True),
    ({"agency": ["police"], "region": "khatlon"}, True),
    ({"agency": SKIPPED, "region": DONT_KNOW}, True),  # markers count as "unknown"
    ({"account": "Ӯро латукӯб карданд"}, True),  # never asked: "unknown" too
    ({"agency": ["military"], "region": "sughd"}, True),
    ({"agency": ["prison", "prosecutor"], "region": "gbao", "threats_now": "yes"}, False),
]


def expected_counts(reports: list[tuple[dict[str, Any], bool]]) -> tuple[Counter[str], ...]:
    """Agency (one count per service named) and region of the consenting reports."""
    agency: Counter[str] = Counter()
    region: Counter[str] = Counter()
    for answers, consent in reports:
        if not consent:
            continue
        named = answers.get("agency")
        agency.update(named if isinstance(named, list) else ["unknown"])
        place = answers.get("region")
        region[place if place in {"sughd", "khatlon", "gbao", "rrp", "abroad"} else "unknown"] += 1
    return agency, region


async def submit(
    db: Database, keyring: KeyRing, answers: dict[str, Any], *, stats: bool = True
) -> str:
    async with db.sessionmaker.begin() as session:
        return await submit_in(session, keyring, answers, stats=stats)


async def submit_in(
    session: Any, keyring: KeyRing, answers: dict[str, Any], *, stats: bool = True
) -> str:
    """``submit_report`` as the review handler calls it, from a new reporter."""
    telegram_id = next(_reporters)
    reporter = await UserRepository(session, keyring).ensure(telegram_id, telegram_id)
    intake = IntakeState(
        consent=Consent(store=True, contact=True, stats=stats),
        draft=Draft(answers=dict(answers), version=CURRENT.version),
    )
    case = await submit_report(
        session,
        keyring,
        CaseRepository(session, keyring),
        intake,
        reporter=reporter,
        reporter_chat_id=telegram_id,
    )
    return case.reference


async def figures(db: Database, keyring: KeyRing) -> case_stats.Stats:
    async with db.sessionmaker() as session:
        return await case_stats.compute(session, keyring)


async def tally_row(db: Database) -> StatsTally:
    async with db.sessionmaker() as session:
        row = await session.get(StatsTally, case_stats.TALLY_NAME)
        assert row is not None
        return row


async def sealed_counts(db: Database, keyring: KeyRing) -> tuple[dict[str, int], dict[str, int]]:
    """The tally's content, opened here with the key ring."""
    row = await tally_row(db)
    assert row.payload_sealed is not None
    plain = keyring.open(
        Purpose.STATS,
        row.payload_sealed,
        FieldContext("stats_tally", "payload_sealed", case_stats.TALLY_NAME),
    )
    opened = case_stats.AnswerCounts.from_json(plain)
    return dict(opened.agency), dict(opened.region)


async def tamper(db: Database) -> None:
    row = await tally_row(db)
    assert row.payload_sealed is not None
    damaged = bytearray(row.payload_sealed)
    damaged[-5] ^= 0x01
    async with db.sessionmaker.begin() as session:
        await session.execute(
            update(StatsTally)
            .where(StatsTally.name == case_stats.TALLY_NAME)
            .values(payload_sealed=bytes(damaged))
        )


async def test_a_new_database_has_the_empty_tally_row(database: Database, keyring: KeyRing) -> None:
    row = await tally_row(database)
    assert (row.kek_id, row.payload_sealed) == ("", None)
    empty = await figures(database, keyring)
    assert (empty.total, empty.by_agency, empty.by_region) == (0, Counter(), Counter())
    assert empty.median_first_action is None


async def test_figures_after_submissions_equal_the_answers_counted_independently(
    database: Database, keyring: KeyRing
) -> None:
    references = [
        await submit(database, keyring, answers, stats=consent) for answers, consent in REPORTS
    ]
    agency, region = expected_counts(REPORTS)
    assert agency == {"police": 2, "gknb": 1, "military": 1, "unknown": 2}
    assert region == {"sughd": 2, "khatlon": 1, "unknown": 2}

    got = await figures(database, keyring)
    assert got.by_agency == agency
    assert got.by_region == region
    assert got.total == 5
    assert got.urgent == 1  # the urgent report that refused statistics is not counted
    assert got.by_status == {"new": 5}
    async with database.sessionmaker() as session:
        created = await session.scalars(select(Case.created_at).where(Case.stats_consent))
        assert got.by_month == Counter(f"{at:%Y-%m}" for at in created)
    assert got.by_outcome == Counter() and got.median_first_action is None
    assert await sealed_counts(database, keyring) == (dict(agency), dict(region))
    assert (await tally_row(database)).kek_id == keyring.primary_id

    exported = case_stats.to_csv(got)
    rows = exported.splitlines()
    assert "agency,unknown,2" in rows and "region,sughd,2" in rows
    for code in ("prosecutor", "prison", "gbao"):
        assert code not in exported
    for reference in references:
        assert reference not in exported


async def test_the_median_time_to_a_first_action_comes_from_sql(
    database: Database, keyring: KeyRing
) -> None:
    references = [await submit(database, keyring, {"region": "sughd"}) for _ in range(5)]
    refusing = await submit(database, keyring, {"region": "sughd"}, stats=False)

    async def set_waits(hours: dict[str, float]) -> None:
        async with database.sessionmaker.begin() as session:
            for reference, waited in hours.items():
                case = await session.scalar(select(Case).where(Case.reference == reference))
                assert case is not None
                case.first_action_at = case.created_at + timedelta(hours=waited)

    # Odd count: the middle value; the refusing case's long wait is not counted.
    await set_waits(dict(zip(references[:3], (1.0, 30.0, 2.5), strict=True)) | {refusing: 999})
    median = (await figures(database, keyring)).median_first_action
    assert median is not None and abs(median.total_seconds() / 3600 - 2.5) < 1e-3
    # Even count: the mean of the two middle values.
    await set_waits({references[3]: 4.5})
    median = (await figures(database, keyring)).median_first_action
    assert median is not None and abs(median.total_seconds() / 3600 - 3.5) < 1e-3
    rendered = case_stats.render_text(await figures(database, keyring), lambda text: text)
    assert "Median time to a lawyer's first action: 3.5 h" in rendered


async def test_shredding_or_withdrawing_keeps_every_figure_once(
    database: Database, keyring: KeyRing
) -> None:
    kept = await submit(database, keyring, {"agency": ["police"], "region": "sughd"})
    withdrawn = await submit(database, keyring, {"agency": ["drugs", "police"], "region": "rrp"})
    async with database.sessionmaker.begin() as session:
        case = await session.scalar(select(Case).where(Case.reference == withdrawn))
        assert case is not None
        # What /forget's withdrawal does before shredding (bot/intake/forget.py).
        case.status, case.outcome, case.closed_at = "closed", "withdrawn", case.created_at
    before = await figures(database, keyring)
    async with database.sessionmaker.begin() as session:
        case = await session.scalar(select(Case).where(Case.reference == withdrawn))
        assert case is not None
        assert await shred_case(session, keyring, case, reason="case_withdraw")
        assert not await shred_case(session, keyring, case, reason="case_withdraw")
    after = await figures(database, keyring)

    assert after == before
    assert after.total == 2
    assert after.by_agency == {"police": 2, "drugs": 1}
    assert after.by_region == {"sughd": 1, "rrp": 1}
    assert after.by_outcome == {"withdrawn": 1}
    assert after.by_status == {"new": 1, "closed": 1}
    async with database.sessionmaker() as session:
        archived = {
            (row.dimension, row.key): row.count
            for row in await session.scalars(select(StatsArchive))
        }
        live = await session.scalar(select(Case).where(Case.reference == kept))
    assert live is not None
    assert archived == {
        ("total", ""): 1,
        ("status", "closed"): 1,
        ("month", f"{live.created_at:%Y-%m}"): 1,
        ("outcome", "withdrawn"): 1,
    }
    # The tally is never touched by shredding: it counted the case when it was sent.
    assert await sealed_counts(database, keyring) == (
        {"police": 2, "drugs": 1},
        {"sughd": 1, "rrp": 1},
    )


async def test_two_submissions_at_once_are_both_counted(
    database: Database, keyring: KeyRing
) -> None:
    """Each in its own session; the second reads the tally while the first holds it.

    Without the row lock on PostgreSQL the second would read the tally before
    the first commits and overwrite it (a lost update).
    """
    first_counted = asyncio.Event()

    async def first() -> None:
        async with database.sessionmaker.begin() as session:
            await submit_in(session, keyring, {"agency": ["gknb"], "region": "abroad"})
            first_counted.set()
            await asyncio.sleep(0.5)  # the second submission reaches the tally meanwhile

    async def second() -> None:
        await first_counted.wait()
        async with database.sessionmaker.begin() as session:
            await submit_in(session, keyring, {"agency": ["gknb", "other"], "region": "abroad"})

    await asyncio.wait_for(asyncio.gather(first(), second()), timeout=60)
    got = await figures(database, keyring)
    assert got.total == 2
    assert got.by_agency == {"gknb": 2, "other": 1}
    assert got.by_region == {"abroad": 2}


async def test_rotation_reseals_the_tally_and_drop_waits_for_it(
    database: Database, tmp_path: Path, key_material: KeyMaterial
) -> None:
    path = tmp_path / "keys.json"
    write_key_file(path, key_material, exclusive=True)
    old = key_material.primary
    # Only the tally uses the old key: no case key, no user.
    async with database.sessionmaker.begin() as session:
        await case_stats.count_submission(
            session, KeyRing(key_material), {"agency": ["anticorr"], "region": "gbao"}
        )
    before = await figures(database, KeyRing(key_material))

    new = keys.add_primary_key(path)
    keyring = KeyRing(load_key_file(path))
    usage = await keys.key_usage(database.sessionmaker, keyring)
    assert usage.stats == {old: 1} and usage.uses(old) == 1
    assert f"{old}: 0 case keys, 0 users, 0 drafts, 0 queued messages, 1 statistics tally" in (
        keys.usage_report(usage, keyring.kek_ids)
    )
    with pytest.raises(KeyFileError, match="still protects 1 values"):
        await keys.drop_key(path, old, database.sessionmaker, keyring)

    assert await keys.rewrap_all(database.sessionmaker, keyring) == 1
    row = await tally_row(database)
    assert row.kek_id == new and row.payload_sealed is not None
    assert peek_key_id(row.payload_sealed) == new
    assert (await keys.key_usage(database.sessionmaker, keyring)).uses(old) == 0
    await keys.drop_key(path, old, database.sessionmaker, keyring)
    without_old = KeyRing(load_key_file(path))
    assert without_old.kek_ids == (new,)
    assert await figures(database, without_old) == before


async def test_a_tampered_tally_is_refused_never_read_as_other_figures(
    database: Database,
    key_material: KeyMaterial,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    keyring = KeyRing(key_material)
    await submit(database, keyring, {"agency": ["police"], "region": "sughd"})
    await tamper(database)
    with pytest.raises(DecryptionError):
        await figures(database, keyring)

    # A report is still stored (the report matters more than a figure) and the
    # failure is logged; the tally stays unreadable, so /stats keeps refusing.
    caplog.set_level(logging.ERROR, logger="intake.submission")
    reference = await submit(database, keyring, {"agency": ["gknb"], "region": "khatlon"})
    assert "statistics tally does not open" in caplog.text
    async with database.sessionmaker() as session:
        cases = CaseRepository(session, keyring)
        case = await cases.by_reference(reference)
        assert case is not None and (await cases.answers(case))["region"] == "khatlon"
    with pytest.raises(DecryptionError):
        await figures(database, keyring)

    # Rotation neither deletes it (that would silently reset the figures) nor
    # skips it: everything else moves, then it stops on the tally.
    path = tmp_path / "keys.json"
    write_key_file(path, key_material, exclusive=True)
    new = keys.add_primary_key(path)
    rotated = KeyRing(load_key_file(path))
    with pytest.raises(DecryptionError):
        await keys.rewrap_all(database.sessionmaker, rotated)
    usage = await keys.key_usage(database.sessionmaker, rotated)
    assert usage.wraps == {new: 2} and usage.stats == {key_material.primary: 1}
    assert (await tally_row(database)).payload_sealed is not None

    # A deleted row is refused too, rather than read as an empty tally.
    async with database.sessionmaker.begin() as session:
        await session.delete(await session.get(StatsTally, case_stats.TALLY_NAME))
    with pytest.raises(DecryptionError, match="missing"):
        await figures(database, keyring)


async def test_cli_stats_refuses_a_tampered_tally(
    tmp_path: Path, key_material: KeyMaterial
) -> None:
    key_file = tmp_path / "secrets" / "keys.json"
    write_key_file(key_file, key_material, exclusive=True)
    database = await open_database("sqlite", tmp_path)
    try:
        await submit(database, KeyRing(key_material), {"region": "sughd"})
        await tamper(database)
    finally:
        await close_database(database)
    env = {"INTAKE_DATABASE_URL": database.url, "INTAKE_KEY_FILE": str(key_file)}
    result = await run_cli("stats", "--csv", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "does not open" in result.stderr and "Traceback" not in result.stderr


async def test_no_agency_or_region_code_in_the_raw_database(
    database: Database, keyring: KeyRing
) -> None:
    """Canary: distinctive choices, sent and then withdrawn (archived), stay sealed."""
    answers = {"agency": ["anticorr", "drugs"], "region": "khatlon"}
    reference = await submit(database, keyring, answers)
    async with database.sessionmaker.begin() as session:
        case = await session.scalar(select(Case).where(Case.reference == reference))
        assert case is not None
        case.status, case.outcome, case.closed_at = "closed", "withdrawn", case.created_at
        assert await shred_case(session, keyring, case, reason="case_withdraw")
    async with database.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(StatsArchive)) == 4
    got = await figures(database, keyring)
    assert got.by_agency == {"anticorr": 1, "drugs": 1} and got.by_region == {"khatlon": 1}

    raw = await raw_database_bytes(database)
    assert scan(raw, [reference, "withdrawn"]), "the scan does not see this test's database"
    assert scan(raw, ["anticorr", "drugs", "khatlon"]) == []


async def test_upgrade_fills_the_tally_from_older_cases_and_clear_counters(
    database: Database, keyring: KeyRing
) -> None:
    """A database from before revision 0002: live cases and clear archive counters."""
    from storage.db import downgrade, migrate

    await downgrade(database.engine, "0001")
    async with database.sessionmaker.begin() as session:
        users = UserRepository(session, keyring)
        cases = CaseRepository(session, keyring)
        for number, (answers, consent) in enumerate(REPORTS):
            await cases.create(
                answers=answers,
                urgent=False,
                questionnaire_version=CURRENT.version,
                stats_consent=consent,
                contact_consent=True,
                reporter_index=users.telegram_index(940_000 + number),
                reporter_chat_id=940_000 + number,
            )
        # What older versions archived for a shredded case, agency and region in clear.
        session.add_all(
            StatsArchive(dimension=dimension, key=key, count=1)
            for dimension, key in (
                ("total", ""),
                ("status", "closed"),
                ("agency", "police"),
                ("agency", "prison"),
                ("region", "gbao"),
            )
        )
    await migrate(database.engine)
    async with database.sessionmaker.begin() as session:
        counted = await case_stats.fill_tally(session, keyring)
    async with database.sessionmaker.begin() as session:
        assert await case_stats.fill_tally(session, keyring) is None  # once only

    agency, region = expected_counts(REPORTS)
    got = await figures(database, keyring)
    assert counted == sum(got.by_region.values()) > 0
    assert got.total == 6
    assert got.by_agency == agency + Counter({"police": 1, "prison": 1})
    assert got.by_region == region + Counter({"gbao": 1})
    async with database.sessionmaker() as session:
        dimensions = set(await session.scalars(select(StatsArchive.dimension)))
    assert dimensions == {"total", "status"}
