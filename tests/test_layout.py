"""The layout holds: one composition root, no development kit in the bot, small files."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPOSITION_ROOT = REPO_ROOT / "bot" / "factory.py"
PRODUCT_PACKAGES = ("bot", "handlers", "storage")
MAX_LINES = 600


def _sources(*packages: str) -> list[Path]:
    return sorted(path for name in packages for path in (REPO_ROOT / name).rglob("*.py"))


def _imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or anywhere else (TYPE_CHECKING included)."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            assert node.level == 0, f"{path}: relative import of {node.module}"
            modules.add(node.module)
    return modules


def _is_in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_only_the_composition_root_imports_handlers() -> None:
    sources = _sources("bot")
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(
            module for module in _imported_modules(path) if _is_in(module, "handlers")
        )
        for path in sources
        if path != COMPOSITION_ROOT
    }
    assert COMPOSITION_ROOT in sources
    assert any(_is_in(module, "handlers") for module in _imported_modules(COMPOSITION_ROOT))
    assert {path: found for path, found in offenders.items() if found} == {}


def test_the_product_never_imports_the_development_kit() -> None:
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(
            module for module in _imported_modules(path) if _is_in(module, "devkit")
        )
        for path in _sources(*PRODUCT_PACKAGES)
    }
    assert {path: found for path, found in offenders.items() if found} == {}


def test_starting_the_bot_loads_no_module_of_the_development_kit() -> None:
    script = (
        "import json, sys, bot.app\n"
        "print(json.dumps(sorted(name for name in sys.modules "
        "if name.split('.')[0] in ('bot', 'handlers', 'devkit'))))\n"
    )
    result = subprocess.run(  # noqa: S603 (our own interpreter and a fixed script)
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    loaded = json.loads(result.stdout)
    assert "bot.factory" in loaded
    assert "handlers" in loaded  # the routers are there: the check below means something
    assert [name for name in loaded if _is_in(name, "devkit")] == []


def test_no_source_file_is_over_600_lines() -> None:
    sources = _sources(*PRODUCT_PACKAGES, "devkit")
    lengths = {
        str(path.relative_to(REPO_ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in sources
    }
    assert len(lengths) > 50
    assert {path: length for path, length in lengths.items() if length > MAX_LINES} == {}
