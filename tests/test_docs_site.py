"""The documentation site builds with ``mkdocs build --strict``: no broken link or anchor, no
page missing from the nav, no page the nav names missing; every page under docs/ is in the nav;
and the built site fetches nothing at view time (no Google Fonts, no CDN)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.scratch import REPO

pytestmark = [pytest.mark.slow, pytest.mark.docs]

EXTERNAL = re.compile(r"""(?:src|href)=["'](?:https?:)?//[^"']+\.(?:css|js|woff2?)["']""")


def nav_pages(node: object) -> list[str]:
    """Every page path the nav names."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [page for value in node.values() for page in nav_pages(value)]
    if isinstance(node, list):
        return [page for item in node for page in nav_pages(item)]
    return []


def test_the_site_builds_strictly_and_offline(tmp_path: Path) -> None:
    site = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO, capture_output=True, text=True, timeout=240, env={"NO_MKDOCS_2_WARNING": "1", "PATH": ""},
    )
    assert built.returncode == 0, built.stderr
    assert (site / "tutorial.html").is_file() and (site / "reference" / "protocols.html").is_file()
    assert (site / "search" / "search_index.json").is_file()
    for page in site.rglob("*.html"):
        text = page.read_text()
        assert "fonts.googleapis.com" not in text, page
        assert not EXTERNAL.findall(text), (page, EXTERNAL.findall(text))


def test_every_page_is_in_the_nav() -> None:
    config = yaml.load((REPO / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)
    listed = set(nav_pages(config["nav"]))
    pages = {path.relative_to(REPO / "docs").as_posix() for path in (REPO / "docs").rglob("*.md")}
    assert pages - listed == set(), "pages missing from the nav of mkdocs.yml"
    assert listed - pages == set(), "nav entries with no page"


def test_observability_describes_every_registered_metric() -> None:
    """The generated metrics reference lists what the code registers; the prose page must
    explain each of them too."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_metrics_reference", REPO / "docs" / "metrics_reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    page = (REPO / "docs" / "observability.md").read_text()
    assert [name for name, *_ in module.rows() if f"`{name}`" not in page] == []
