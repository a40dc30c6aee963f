"""The hash-pinned lock (requirements/): made from pyproject.toml, installed as locked,
refused when stale, and audited for known vulnerabilities (scripts/lockfile.py)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import threading
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from scripts import lockfile

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "lockfile.py"
PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>[^\s;\\]+)(?:\s*;\s*(?P<marker>[^\\]+))?"
)


@dataclass
class Pin:
    version: str
    marker: str | None
    hashes: int = 0

    def applies_here(self) -> bool:
        return self.marker is None or Marker(self.marker).evaluate()


def locked_pins(lock: Path) -> dict[str, list[Pin]]:
    """Every package in a lock file, by name (one entry per marker)."""
    pins: dict[str, list[Pin]] = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line)
        if match:
            marker = match["marker"].strip() if match["marker"] else None
            pins.setdefault(canonicalize_name(match["name"]), []).append(
                Pin(match["version"], marker)
            )
        elif line.strip().startswith("--hash=sha256:"):
            list(pins.values())[-1][-1].hashes += 1
    return pins


def pin_here(pins: dict[str, list[Pin]], name: str) -> str:
    """The version of a package the lock gives this interpreter."""
    versions = [pin.version for pin in pins[canonicalize_name(name)] if pin.applies_here()]
    assert len(versions) == 1, (name, versions)
    return versions[0]


def run_script(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(SCRIPT), "--root", str(root), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def copy_of_project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "requirements").mkdir(parents=True)
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    for lock in ("dev.txt", "runtime.txt"):
        shutil.copy(ROOT / "requirements" / lock, root / "requirements" / lock)
    return root


def test_the_committed_lock_was_made_from_this_pyproject() -> None:
    result = run_script(ROOT, "check")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"aiogram>=3.31,<4"', '"aiogram>=3.32,<4"'),  # a runtime version
        ('"mypy>=2.4",', '"mypy>=2.4",\n    "compose-spec>=0.1",'),  # a new dev dependency
        ('requires = ["setuptools>=68", "wheel"]', 'requires = ["setuptools>=69", "wheel"]'),
    ],
)
def test_a_dependency_change_without_make_lock_fails_with_one_line(
    tmp_path: Path, old: str, new: str
) -> None:
    root = copy_of_project(tmp_path)
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    assert old in text
    pyproject.write_text(text.replace(old, new), encoding="utf-8")

    result = run_script(root, "check")

    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert "requirements/dev.txt is out of date" in lines[0]
    assert "run `make lock`" in lines[0]


def test_edits_outside_the_dependency_sections_need_no_new_lock(tmp_path: Path) -> None:
    root = copy_of_project(tmp_path)
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(text.replace("line-length = 100", "line-length = 99"), encoding="utf-8")

    assert run_script(root, "check").returncode == 0


def test_a_lock_without_its_digest_is_refused(tmp_path: Path) -> None:
    root = copy_of_project(tmp_path)
    runtime = root / "requirements" / "runtime.txt"
    kept = [
        line
        for line in runtime.read_text(encoding="utf-8").splitlines()
        if not line.startswith(lockfile.DIGEST_PREFIX)
    ]
    runtime.write_text("\n".join(kept) + "\n", encoding="utf-8")

    result = run_script(root, "check")

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "requirements/runtime.txt has no pyproject.toml digest: "
        "run `make lock` and commit requirements/"
    ]


def test_every_locked_package_is_pinned_with_hashes() -> None:
    for lock in ("dev.txt", "runtime.txt"):
        pins = locked_pins(ROOT / "requirements" / lock)
        assert len(pins) > 10
        for name, entries in pins.items():
            for pin in entries:
                assert pin.hashes >= 1, f"{lock}: {name}=={pin.version} has no hash"


def test_the_lock_satisfies_pyproject_and_holds_the_build_backend() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    runtime_requirements = [
        *pyproject["project"]["dependencies"],
        *pyproject["build-system"]["requires"],
        "pip",
    ]
    dev_requirements = [
        *runtime_requirements,
        *(r for extra in pyproject["project"]["optional-dependencies"].values() for r in extra),
    ]
    dev = locked_pins(ROOT / "requirements" / "dev.txt")
    runtime = locked_pins(ROOT / "requirements" / "runtime.txt")
    for pins, requirements in ((dev, dev_requirements), (runtime, runtime_requirements)):
        for text in requirements:
            requirement = Requirement(text)
            version = pin_here(pins, requirement.name)
            assert requirement.specifier.contains(version, prereleases=True), (text, version)
    # The image runs the versions the tests ran.
    for name, entries in runtime.items():
        assert all(pin in dev[name] for pin in entries), name


def test_the_virtualenv_holds_exactly_the_locked_versions() -> None:
    """What `make` installed: every package of the dev lock at its pinned version."""
    pins = locked_pins(ROOT / "requirements" / "dev.txt")
    wrong = {}
    for name, entries in pins.items():
        for pin in entries:
            if pin.applies_here() and metadata.version(name) != pin.version:
                wrong[name] = (metadata.version(name), pin.version)
    assert wrong == {}


def a_wheel(folder: Path, name: str, requires: str | None = None) -> Path:
    """A minimal pure-Python wheel, so pip's hash mode is tried without a network."""
    wheel = folder / f"{name}-1.0-py3-none-any.whl"
    info = f"{name}-1.0.dist-info"
    metadata_text = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n"
    if requires:
        metadata_text += f"Requires-Dist: {requires}\n"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(f"{name}/__init__.py", "")
        archive.writestr(f"{info}/METADATA", metadata_text)
        archive.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        archive.writestr(f"{info}/RECORD", "")
    return wheel


def install_as_make_does(folder: Path, lock_text: str) -> subprocess.CompletedProcess[str]:
    """`make`'s install step (pip --require-hashes -r LOCK) from a folder of wheels."""
    lock = folder / "lock.txt"
    lock.write_text(lock_text, encoding="utf-8")
    offline = ["--isolated", "--no-index", "--find-links", str(folder)]
    target = ["--target", str(folder / "site")]
    return subprocess.run(  # noqa: S603 - our own interpreter's pip
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            *offline,
            *target,
            "--require-hashes",
            "-r",
            str(lock),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_file_that_differs_from_the_locked_hash_is_refused(tmp_path: Path) -> None:
    wheel = a_wheel(tmp_path, "lockprobe")
    locked = f"lockprobe==1.0 --hash=sha256:{sha256(wheel)}\n"
    assert install_as_make_does(tmp_path, locked).returncode == 0

    with zipfile.ZipFile(wheel, "a") as archive:  # the same release, altered on the way
        archive.writestr("lockprobe/backdoor.py", "")
    result = install_as_make_does(tmp_path, locked)

    assert result.returncode != 0
    assert "DO NOT MATCH THE HASHES" in result.stderr
    assert not (tmp_path / "site" / "lockprobe" / "backdoor.py").exists()


def test_a_dependency_missing_from_the_lock_is_refused(tmp_path: Path) -> None:
    wheel = a_wheel(tmp_path, "lockprobe", requires="unlockedprobe")
    a_wheel(tmp_path, "unlockedprobe")

    result = install_as_make_does(tmp_path, f"lockprobe==1.0 --hash=sha256:{sha256(wheel)}\n")

    assert result.returncode != 0
    assert "In --require-hashes mode, all requirements must have their versions pinned" in (
        result.stderr
    )
    assert "unlockedprobe" in result.stderr
    assert not (tmp_path / "site" / "lockprobe").exists()


# --- pip-audit of the locked set -------------------------------------------------

ADVISORY = {
    "id": "PYSEC-0000-LOCKTEST",
    "summary": "a made-up advisory for this test",
    "affected": [
        {
            "package": {"name": "pyyaml", "ecosystem": "PyPI"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99.0"}]}],
        }
    ],
}


class FakeOsv(BaseHTTPRequestHandler):
    """The OSV query API (outside the project): one advisory, for pyyaml."""

    def do_POST(self) -> None:
        query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        answer = {"vulns": [ADVISORY]} if query["package"]["name"] == "pyyaml" else {}
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def osv_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOsv)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/query"
    finally:
        server.shutdown()
        server.server_close()


def small_locked_project(tmp_path: Path, *names: str) -> Path:
    """A project whose lock holds a few of the real locked packages, hashes and all."""
    root = tmp_path / "project"
    (root / "requirements").mkdir(parents=True)
    blocks = [lockfile.locked_block(ROOT / "requirements" / "dev.txt", name) for name in names]
    assert all(blocks)
    (root / "requirements" / "dev.txt").write_text("".join(map(str, blocks)), encoding="utf-8")
    return root


def test_a_known_vulnerability_in_the_lock_fails_the_audit(tmp_path: Path, osv_url: str) -> None:
    root = small_locked_project(tmp_path, "pyyaml", "idna")
    pyyaml = pin_here(locked_pins(root / "requirements" / "dev.txt"), "pyyaml")

    result = run_script(
        root,
        "audit",
        "--vulnerability-service=osv",
        f"--osv-url={osv_url}",
        f"--cache-dir={tmp_path / 'cache'}",
    )

    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == f"pip-audit: pyyaml {pyyaml}: PYSEC-0000-LOCKTEST (fixed in 99.0)"
    assert lines[1].startswith("pip-audit: 1 known vulnerabilities in the locked set")


def test_a_clean_lock_passes_the_audit(tmp_path: Path, osv_url: str) -> None:
    root = small_locked_project(tmp_path, "idna", "certifi")

    result = run_script(
        root,
        "audit",
        "--vulnerability-service=osv",
        f"--osv-url={osv_url}",
        f"--cache-dir={tmp_path / 'cache'}",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "pip-audit: no known vulnerabilities in 2 locked packages\n"


def test_an_unreachable_advisory_service_is_one_line_and_no_failure(tmp_path: Path) -> None:
    root = small_locked_project(tmp_path, "pyyaml")
    closed = ThreadingHTTPServer(("127.0.0.1", 0), FakeOsv)
    port = closed.server_address[1]
    closed.server_close()  # nothing listens there now: the connection is refused

    result = run_script(
        root,
        "audit",
        "--vulnerability-service=osv",
        f"--osv-url=http://127.0.0.1:{port}/v1/query",
        f"--cache-dir={tmp_path / 'cache'}",
        "--timeout=5",
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("pip-audit: advisory service unreachable (")
    assert lines[0].endswith("known-vulnerability check skipped")


def test_packages_the_service_could_not_look_up_skip_the_check_but_findings_still_fail() -> None:
    """PyPI's per-version JSON unreachable (answered 404): pip-audit itself passes with
    'No known vulnerabilities found', having checked nothing. That must not read as clean."""
    skipped = {
        "name": "idna",
        "skip_reason": "Dependency not found on PyPI and could not be audited: idna (3.21)",
    }
    vulnerable = {
        "name": "pyyaml",
        "version": "6.0.4",
        "vulns": [{"id": "PYSEC-0000-LOCKTEST", "fix_versions": ["99.0"]}],
    }

    code, lines = lockfile.audit_verdict({"dependencies": [skipped]})
    assert code == 0
    assert len(lines) == 1
    assert lines[0].startswith("pip-audit: advisory service unreachable, 1 of 1 locked")

    code, lines = lockfile.audit_verdict({"dependencies": [skipped, vulnerable]})
    assert code == 1
    assert lines[0] == "pip-audit: pyyaml 6.0.4: PYSEC-0000-LOCKTEST (fixed in 99.0)"
    assert lines[-1] == "pip-audit: 1 locked packages could not be checked"
