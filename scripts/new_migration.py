"""Write the next Alembic revision from the difference between the models and head.

Usage: .venv/bin/python scripts/new_migration.py "what changes"

An empty SQLite database is migrated to head, then compared with the models
(``storage/models.py``); the revision gets the next number (0003, 0004, ...).
Read and adjust what it wrote (data moves, server defaults, PostgreSQL-only
details), then run the migration tests: ``pytest tests/test_storage.py -k migrations``.
"""

import asyncio
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alembic import command  # noqa: E402

from storage.db import alembic_config, create_engine, migrate  # noqa: E402

VERSIONS = ROOT / "storage" / "migrations" / "versions"


def next_revision() -> str:
    numbers = [int(path.name[:4]) for path in VERSIONS.glob("[0-9][0-9][0-9][0-9]_*.py")]
    return f"{max(numbers, default=0) + 1:04d}"


async def main(message: str) -> None:
    rev_id = next_revision()
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite+aiosqlite:///{folder}/empty.db")
        await migrate(engine)
        async with engine.begin() as conn:
            await conn.run_sync(
                lambda sync: command.revision(
                    alembic_config(sync), message=message, autogenerate=True, rev_id=rev_id
                )
            )
        await engine.dispose()
    for target in VERSIONS.glob(f"{rev_id}_*.py"):
        text = re.sub(r" *# ### (commands auto generated|end Alembic).*\n", "", target.read_text())
        target.write_text(re.sub(r"Create Date: .*\n", "", text))
        print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].strip():
        sys.exit(__doc__)
    asyncio.run(main(sys.argv[1]))
