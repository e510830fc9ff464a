"""`platform/` is a source root, never a package: the standard library's `platform` must stay reachable
from every entry point started at the repository root (where '' or the root is first on sys.path)."""

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STDLIB = sysconfig.get_paths()["stdlib"]
PROBE = "import platform; assert platform.system(), platform.__file__; print(platform.__file__)"


def run_from_root(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_platform_has_no_init_file():
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_stdlib_platform_wins_from_the_repository_root():
    result = run_from_root("-c", PROBE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(STDLIB)


@pytest.mark.parametrize(
    "entry_point",
    [
        ["-m", "pytest", "--version"],
        ["-m", "uvicorn", "--version"],
        ["-m", "dramatiq", "--version"],
        ["-m", "alembic", "heads"],
        ["-m", "alliance", "--help"],
    ],
)
def test_entry_points_start_from_the_repository_root(entry_point):
    result = run_from_root(*entry_point)
    assert result.returncode == 0, result.stderr


def test_tools_and_the_app_import_with_the_stdlib_platform():
    tools = "import pytest, uvicorn.main, dramatiq.cli, alembic.config, alliance.app, alliance.cli"
    result = run_from_root("-c", f"{tools}; {PROBE}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(STDLIB)


def test_alembic_sees_the_migrations_from_the_root():
    result = run_from_root("-m", "alembic", "heads")
    assert "(head)" in result.stdout, result.stderr
