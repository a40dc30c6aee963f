"""Command line: ``intake-bot [run|migrate|keys ...]`` (also ``python -m bot``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from bot.config import Settings, SettingsError, load_settings
from bot.logs import configure_logging
from storage.crypto import DecryptionError
from storage.crypto.keyfile import KeyFileError
from storage.db import DatabaseInUse

EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="intake-bot", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="apply migrations and start the bot (default)")
    commands.add_parser("migrate", help="apply database migrations and exit")
    commands.add_parser("health", help="exit 0 when the key file and database are usable")
    audit = commands.add_parser("audit", help="the audit log").add_subparsers(
        dest="audit_command", required=True
    )
    verify = audit.add_parser(
        "verify", help="check the whole HMAC chain; name the first broken entry"
    )
    verify.add_argument(
        "--anchor",
        metavar="SEQ:HEX",
        help="an anchor printed by an earlier verify: fail if the log no longer reaches it",
    )
    stats = commands.add_parser("stats", help="anonymous aggregate figures")
    stats.add_argument("--csv", action="store_true", help="print the aggregates as CSV")
    keys = commands.add_parser("keys", help="manage the key file").add_subparsers(
        dest="keys_command", required=True
    )
    keys.add_parser("init", help="create a new key file (never overwrites)")
    rotate = keys.add_parser("rotate", help="new primary key; re-wrap every case key")
    rotate.add_argument("--resume", action="store_true", help="finish an interrupted rotation")
    rotate.add_argument("--batch", type=int, default=1000, help="rows per transaction")
    keys.add_parser("status", help="which keys exist and what each protects")
    keys.add_parser("public", help="print the custody receipts' public keys, to publish")
    drop = keys.add_parser("drop", help="remove an old key that nothing uses any more")
    drop.add_argument("key_id")
    receipt = commands.add_parser(
        "verify-receipt",
        help="check a custody receipt (and the file against it) offline: no database, no key file",
    )
    receipt.add_argument("receipt", type=Path, help="the receipt, as handed to the lawyer")
    receipt.add_argument("file", type=Path, nargs="?", help="the file the receipt is about")
    receipt.add_argument(
        "--keys",
        type=Path,
        required=True,
        help="the published public keys (the output of `intake-bot keys public`)",
    )
    return parser


def _verify_receipt(args: argparse.Namespace) -> int:
    """Offline: reads only the three files named; prints what was proven."""
    from storage.crypto.receipts import Receipt, ReceiptError, parse_public_keys, verify

    try:
        receipt = Receipt.parse(args.receipt.read_text(encoding="utf-8"))
        public_keys = parse_public_keys(args.keys.read_text(encoding="utf-8"))
        data = args.file.read_bytes() if args.file is not None else None
        verify(receipt, public_keys, data)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"intake-bot: cannot read {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ReceiptError as exc:
        print(f"receipt NOT valid: {exc}")
        return 1
    print(
        f"receipt valid: signed by {receipt.key_id}; case {receipt.reference}, "
        f"received {receipt.received_at:%Y-%m-%d %H:%M:%S} UTC by {receipt.version}"
    )
    print("the file matches the receipt" if data is not None else "no file given: not compared")
    return 0


async def _migrate(settings: Settings) -> None:
    from bot.app import open_runtime, prepare_database

    async with open_runtime(settings, create_keys=True) as runtime:
        await prepare_database(runtime)
    print("database is up to date")


async def _health(settings: Settings) -> bool:
    from sqlalchemy import text

    from bot.app import open_runtime

    try:
        async with open_runtime(settings) as runtime, runtime.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (OSError, SQLAlchemyError) as exc:
        print(f"intake-bot: database unreachable ({type(exc).__name__})", file=sys.stderr)
        return False
    return True


async def _audit_verify(settings: Settings, anchor_text: str | None) -> bool:
    from bot.app import open_runtime
    from storage.audit import Anchor, verify_chain

    try:
        anchor = Anchor.parse(anchor_text) if anchor_text is not None else None
    except ValueError as exc:
        print(f"intake-bot: --anchor: {exc}", file=sys.stderr)
        return False
    async with open_runtime(settings) as runtime:
        report = await verify_chain(runtime.sessionmaker, runtime.keyring, anchor=anchor)
    if report.intact:
        print(f"audit log intact: {report.entries} entries")
        if report.head is not None:
            # Truncating the newest entries leaves a valid chain; this anchor,
            # kept outside the database, is what shows it (docs/threat-model.md).
            print(f"anchor (write it down elsewhere; check with --anchor): {report.head}")
        return True
    print(
        f"audit log BROKEN at entry {report.first_broken} ({report.reason}); "
        f"{report.entries} entries before it verify",
        file=sys.stderr,
    )
    return False


async def _stats(settings: Settings, as_csv: bool) -> None:
    from bot.app import open_runtime
    from bot.cases import stats
    from storage import audit

    async with open_runtime(settings) as runtime, runtime.sessionmaker.begin() as session:
        figures = await stats.compute(session, runtime.keyring)
        await audit.record(session, runtime.keyring, "stats_export", actor_id=None)
    if as_csv:
        sys.stdout.write(stats.to_csv(figures))
    else:
        print(stats.render_text(figures, lambda text: text))


async def _keys(settings: Settings, args: argparse.Namespace) -> None:
    from bot.app import open_runtime
    from storage import keys
    from storage.db import migrate

    if args.keys_command == "init":
        keys.init_key_file(settings.key_file)
        print(f"created {settings.key_file} (mode 0600); back it up now")
        return
    if args.keys_command == "public":
        material, _ = keys.ensure_key_file(settings.key_file)
        sys.stdout.write(keys.public_keys_text(material))
        return
    if args.keys_command == "rotate" and not args.resume:
        new_id = keys.add_primary_key(settings.key_file)
        print(f"new primary key {new_id}; re-wrapping case keys...")
    async with open_runtime(settings) as runtime:
        await migrate(runtime.engine)
        if args.keys_command == "rotate":
            changed = await keys.rewrap_all(
                runtime.sessionmaker, runtime.keyring, batch_size=args.batch
            )
            print(f"done: {changed} values moved to {runtime.keyring.primary_id}")
        elif args.keys_command == "status":
            usage = await keys.key_usage(runtime.sessionmaker, runtime.keyring)
            print(keys.usage_report(usage, runtime.keyring.kek_ids))
        elif args.keys_command == "drop":
            await keys.drop_key(
                settings.key_file, args.key_id, runtime.sessionmaker, runtime.keyring
            )
            print(f"dropped {args.key_id}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = args.command or "run"
    if command == "verify-receipt":
        return _verify_receipt(args)
    try:
        settings = load_settings()
        configure_logging(settings.log_level)
        if command == "run":
            if settings.bot_token is None:
                raise SettingsError(
                    "INTAKE_BOT_TOKEN is not set: put the token from @BotFather "
                    "in the environment or in .env"
                )
            from bot.app import run_blocking

            run_blocking(settings)
        elif command == "migrate":
            asyncio.run(_migrate(settings))
        elif command == "keys":
            asyncio.run(_keys(settings, args))
        elif command == "health":
            return 0 if asyncio.run(_health(settings)) else 1
        elif command == "audit":
            return 0 if asyncio.run(_audit_verify(settings, args.anchor)) else 1
        elif command == "stats":
            asyncio.run(_stats(settings, args.csv))
    except (SettingsError, KeyFileError, DatabaseInUse) as exc:
        print(f"intake-bot: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except DecryptionError as exc:
        # e.g. `stats` or `keys rotate` with a damaged or altered statistics tally.
        print(f"intake-bot: a stored value does not open: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
