"""The dependency lock: requirements/*.txt, every package pinned with its hashes.

    python scripts/lockfile.py check            one line and exit 1 if pyproject.toml's
                                                dependencies changed since the lock was made
    python scripts/lockfile.py lock [UV-ARGS]   re-resolve from pyproject.toml (`make lock`);
                                                pins are kept unless UV-ARGS say --upgrade
    python scripts/lockfile.py audit [ARGS]     pip-audit of the locked set (`make audit`)
    python scripts/lockfile.py pin NAME         one package's lines of the dev lock (pin
                                                and hashes), to install it on its own

`requirements/dev.txt` is everything `make` installs: the runtime, every extra, the build
backend (the project is installed with --no-build-isolation) and pip itself.
`requirements/runtime.txt` is what the Docker image installs (the runtime and the `speed`
extra), resolved within dev.txt's pins, so the image runs the versions the tests ran. Each
file's header records a digest of the dependency sections of pyproject.toml it was made
from; `check` compares it.

Only the standard library is used, so `check` runs before anything is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEV_LOCK = "requirements/dev.txt"
RUNTIME_LOCK = "requirements/runtime.txt"
# Installed from the lock too, though no pyproject section names it: the installer.
INSTALLER = ["pip"]
DIGEST_PREFIX = "# pyproject.toml dependencies: sha256:"
HEADER = (
    "# Made from pyproject.toml by `make lock` (uv pip compile --universal --generate-hashes).\n"
    "# Do not edit: change pyproject.toml and run `make lock`; see docs/deployment.md.\n"
)
# How pip-audit fails when it cannot reach the advisory service (requests and
# pip-audit's own exception names, as they end its traceback).
UNREACHABLE = re.compile(
    r"ConnectionError|ConnectTimeout|ReadTimeout|Timeout|ServiceError|Max retries exceeded"
    r"|Could not connect|NameResolutionError|Failed to resolve"
)


def dependency_sections(root: Path) -> dict[str, Any]:
    """What the lock is made from: every section of pyproject.toml that names a dependency."""
    with (root / "pyproject.toml").open("rb") as file:
        pyproject = tomllib.load(file)
    project = pyproject.get("project", {})
    return {
        "requires-python": project.get("requires-python"),
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
        "build-system.requires": pyproject.get("build-system", {}).get("requires", []),
        "installer": INSTALLER,
    }


def pyproject_digest(root: Path) -> str:
    canonical = json.dumps(dependency_sections(root), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def recorded_digest(lock: Path) -> str | None:
    for line in lock.read_text(encoding="utf-8").splitlines():
        if line.startswith(DIGEST_PREFIX):
            return line.removeprefix(DIGEST_PREFIX).strip()
    return None


def stale_lock(root: Path) -> str | None:
    """One line saying why the lock does not match pyproject.toml, or None when it does."""
    expected = pyproject_digest(root)
    for name in (DEV_LOCK, RUNTIME_LOCK):
        lock = root / name
        if not lock.is_file():
            return f"{name} is missing: run `make lock` and commit requirements/"
        recorded = recorded_digest(lock)
        if recorded is None:
            return f"{name} has no pyproject.toml digest: run `make lock` and commit requirements/"
        if recorded != expected:
            return (
                f"{name} is out of date: the dependencies in pyproject.toml changed since "
                "the lock was made; run `make lock` and commit requirements/"
            )
    return None


def check(root: Path) -> int:
    problem = stale_lock(root)
    if problem is None:
        return 0
    print(problem, file=sys.stderr)
    return 1


def locked_block(lock: Path, name: str) -> str | None:
    """The lines of one package in a lock file: its pin and hashes."""
    block: list[str] = []
    for line in lock.read_text(encoding="utf-8").splitlines():
        if block and not line.startswith(" "):
            break
        starts = block or re.match(rf"{re.escape(name)}==", line)
        if starts and not line.lstrip().startswith("#"):
            block.append(line)
    return "\n".join(block) + "\n" if block else None


def pin(root: Path, names: list[str]) -> int:
    blocks = [locked_block(root / DEV_LOCK, name) for name in names]
    if not names or None in blocks:
        print(f"{DEV_LOCK} pins none of: {' '.join(names)}", file=sys.stderr)
        return 1
    print("".join(map(str, blocks)), end="")
    return 0


def uv_command(root: Path) -> list[str]:
    """uv from this virtualenv, first installed from the current lock (hash-checked) if need be."""
    uv = Path(sys.executable).parent / "uv"
    if not uv.exists():
        lock = root / DEV_LOCK
        pin = locked_block(lock, "uv") if lock.is_file() else None
        if pin is None:
            raise SystemExit(f"uv is not installed and {DEV_LOCK} pins none: `pip install uv`")
        with tempfile.TemporaryDirectory() as folder:
            requirements = Path(folder) / "uv.txt"
            requirements.write_text(pin, encoding="utf-8")
            install = [sys.executable, "-m", "pip", "install", "--quiet", "--require-hashes"]
            subprocess.run(  # noqa: S603 - our own interpreter, a file we wrote
                [*install, "--no-deps", "-r", str(requirements)], check=True
            )
    return [str(uv)]


def compile_lock(root: Path, output: str, extra_args: list[str]) -> None:
    sections = dependency_sections(root)
    # The build backend and the installer are not dependencies of the project, so
    # uv reads them from standard input.
    unnamed = "\n".join([*sections["build-system.requires"], *INSTALLER]) + "\n"
    command = [
        *uv_command(root),
        "pip",
        "compile",
        "pyproject.toml",
        "-",
        "--universal",
        "--generate-hashes",
        "--no-header",
        "--quiet",
        "--output-file",
        output,
        *extra_args,
    ]
    subprocess.run(command, input=unnamed, text=True, cwd=root, check=True)  # noqa: S603 - uv
    lock = root / output
    body = lock.read_text(encoding="utf-8")
    digest_line = f"{DIGEST_PREFIX}{pyproject_digest(root)}\n"
    lock.write_text(HEADER + digest_line + body, encoding="utf-8")


def lock(root: Path, uv_args: list[str]) -> int:
    (root / "requirements").mkdir(exist_ok=True)
    # Everything first, then the runtime within those pins: the image then runs the
    # versions the tests ran, and a new dev dependency may still move a shared one.
    compile_lock(root, DEV_LOCK, ["--all-extras", *uv_args])
    compile_lock(root, RUNTIME_LOCK, ["--extra", "speed", "--constraint", DEV_LOCK, *uv_args])
    print(f"locked: {DEV_LOCK}, {RUNTIME_LOCK}; review `git diff requirements/` and commit")
    return 0


def audit_verdict(report: dict[str, Any]) -> tuple[int, list[str]]:
    """Exit code and lines for a pip-audit JSON report: any finding fails; a dependency
    that could not be looked up means the service did not answer, which does not."""
    dependencies = report.get("dependencies", [])
    findings = [
        f"pip-audit: {dependency['name']} {dependency['version']}: {vuln['id']}"
        + (f" (fixed in {', '.join(vuln['fix_versions'])})" if vuln.get("fix_versions") else "")
        for dependency in dependencies
        for vuln in dependency.get("vulns", [])
    ]
    skipped = [dependency for dependency in dependencies if "skip_reason" in dependency]
    if findings:
        lines = [
            *findings,
            f"pip-audit: {len(findings)} known vulnerabilities in the locked set: "
            "update the lock (docs/deployment.md)",
        ]
        if skipped:
            lines.append(f"pip-audit: {len(skipped)} locked packages could not be checked")
        return 1, lines
    if skipped:
        reason = skipped[0]["skip_reason"]
        return 0, [
            f"pip-audit: advisory service unreachable, {len(skipped)} of {len(dependencies)} "
            f'locked packages not checked (first: "{reason}"); known-vulnerability check skipped'
        ]
    return 0, [f"pip-audit: no known vulnerabilities in {len(dependencies)} locked packages"]


def audit(root: Path, pip_audit_args: list[str]) -> int:
    with tempfile.TemporaryDirectory() as folder:
        report_file = Path(folder) / "audit.json"
        command = [
            sys.executable,
            "-m",
            "pip_audit",
            "--disable-pip",
            "--requirement",
            str(root / DEV_LOCK),
            "--progress-spinner",
            "off",
            "--format",
            "json",
            "--output",
            str(report_file),
            *pip_audit_args,
        ]
        result = subprocess.run(  # noqa: S603 - our own interpreter's pip-audit
            command, capture_output=True, text=True, check=False
        )
        if not report_file.exists():
            error_lines = result.stderr.strip().splitlines() or ["(no output)"]
            last = error_lines[-1]
            if UNREACHABLE.search(result.stderr):
                print(
                    f"pip-audit: advisory service unreachable ({last}); "
                    "known-vulnerability check skipped"
                )
                return 0
            print(f"pip-audit failed (exit {result.returncode}): {last}", file=sys.stderr)
            return 1
        code, lines = audit_verdict(json.loads(report_file.read_text(encoding="utf-8")))
    print("\n".join(lines), file=sys.stderr if code else sys.stdout)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None, allow_abbrev=False
    )
    parser.add_argument("--root", type=Path, default=ROOT, help="the project folder")
    parser.add_argument("command", choices=["check", "lock", "audit", "pin"])
    arguments, rest = parser.parse_known_args(argv)
    root: Path = arguments.root.resolve()
    if arguments.command == "check":
        return check(root)
    if arguments.command == "pin":
        return pin(root, rest)
    if arguments.command == "lock":
        return lock(root, rest)
    return audit(root, rest)


if __name__ == "__main__":
    sys.exit(main())
