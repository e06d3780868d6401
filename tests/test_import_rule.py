"""The import rule holds and is enforced: plugins import only the contract and the toolkit, the
contract imports nothing of ``core``; the lint session's ruff fails on a violation."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from core.toolkit import TOOLKIT, banned_api_table, banned_modules

ROOT = Path(__file__).resolve().parents[1]
RUFF = shutil.which("ruff")  # the test extra installs it



def ruff(code: str, as_file: str) -> subprocess.CompletedProcess[str]:
    """Lint ``code`` as if it were the file ``as_file`` of the repository (its config applies)."""
    assert RUFF is not None, "ruff comes with the test extra"
    return subprocess.run(
        [RUFF, "check", "--select", "TID251", "--stdin-filename", as_file, "-"],
        input=code, capture_output=True, text=True, cwd=ROOT, timeout=60,
    )


def test_the_banned_table_in_pyproject_is_current() -> None:
    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]["flake8-tidy-imports"]
    hint = "run python -m core.toolkit and paste:\n" + banned_api_table()
    assert sorted(table["banned-api"]) == banned_modules(), hint


def test_every_engine_module_is_banned_and_no_toolkit_package_is() -> None:
    banned = set(banned_modules())
    assert {"core.gateway", "core.scheduler", "core.config", "core.errors", "core.sqlstore.rows"} <= banned
    assert not banned & set(TOOLKIT)


@pytest.mark.parametrize("statement", [
    "from core.gateway import app", "import core.config", "from core.errors import ConfigError",
    "from core.sqlstore.schema import jobs", "from core.testing.processes import free_port",
])
def test_a_plugin_importing_the_engine_fails_the_lint(statement: str) -> None:
    result = ruff(f"{statement}\n", "plugins/core-plugin-nats/src/core_plugin_nats/violation.py")
    assert result.returncode == 1 and "TID251" in result.stdout, result.stdout + result.stderr


def test_a_plugin_importing_the_toolkit_and_the_contract_passes() -> None:
    code = "from core.sqlstore import SQLStore\nfrom core.testing import StoreSuite\nfrom hookspecs import Job\n"
    result = ruff(code, "plugins/core-plugin-nats/src/core_plugin_nats/fine.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_plugin_tests_may_use_the_engine() -> None:
    assert ruff("import core.config\n", "plugins/core-plugin-nats/tests/test_x.py").returncode == 0


def test_the_contract_importing_core_fails_the_lint() -> None:
    result = ruff("from core.testing import StoreSuite\n", "hookspecs/_violation.py")
    assert result.returncode == 1 and "hookspecs is the contract" in result.stdout


def test_the_tree_obeys_the_rule() -> None:
    assert RUFF is not None
    result = subprocess.run([RUFF, "check", "--select", "TID251", "."], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stdout
