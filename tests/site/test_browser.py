"""The registry's pages in a real browser: the distribution's headless Chromium, driven by
Playwright (no browser is downloaded). This repository's registry site and a generated one of
1,000 models x 10 versions x 3 environments: pages load with no console error, internal links
resolve, search filters the index, timelines and lineage graphs are drawn, the keyboard
reaches the content and a phone shows the tables. Screenshots go to $RECONCILER_ARTIFACTS
(default .artifacts/ in the repository), where CI keeps them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from reconciler import api
from reconciler.registry import db
from tests.conftest import copy_registry

PROJECT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("RECONCILER_ARTIFACTS") or PROJECT / ".artifacts") / "site"


def _chromium() -> str:
    """The system browser; without it (or Playwright) the tests skip, except in CI."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright  # noqa: F401
    except ImportError:
        found = None
    if found is None:
        reason = ("needs the system Chromium (apt-get install chromium) and Playwright "
                  "(pip install -e '.[dev]')")
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser tests: {reason}")
        pytest.skip(reason)
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def small_site(history_template: Path, tmp_path_factory: pytest.TempPathFactory
               ) -> Path:
    """This repository's test registry (a history with promotions, a canary, a rollback and
    lineage), applied and built."""
    registry = copy_registry(history_template, tmp_path_factory.mktemp("site") / "registry")
    url = f"sqlite:///{registry.root.parent / 'registry.sqlite'}"
    api.db_upgrade(str(registry.root), url)
    api.apply(str(registry.root), url)
    built = api.site(str(registry.root), url,
                     commit_url="https://example.com/org/repo/commit/{sha}")
    registry.repo.close()
    return Path(built.out)


@pytest.fixture(scope="module")
def large_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated registry of 1,000 models x 10 versions x 3 environments (bench/auditdb)."""
    sys.path.insert(0, str(PROJECT / "bench"))
    from auditdb import Workload, fill

    root = tmp_path_factory.mktemp("large") / "registry"
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "-c", "user.name=T", "-c", "user.email=t@x",
                    "commit", "-q", "--allow-empty", "-m", "root"], check=True)
    url = f"sqlite:///{root.parent / 'registry.sqlite'}"
    engine = db.make_engine(sqlalchemy.make_url(url))
    fill(engine, "registry", Workload(1000, 10, 0, environments=("dev", "staging",
                                                                  "production"), datasets=50))
    engine.dispose()
    os.environ["RECONCILER_REPOSITORY"] = "registry"
    try:
        built = api.site(str(root), url)
    finally:
        del os.environ["RECONCILER_REPOSITORY"]
    assert built.largest[1] < 500 * 1024, built.largest
    return Path(built.out)


def _open(browser: Any, page_path: Path, **options: Any) -> tuple[Any, list[str]]:
    """A page loaded in a new tab, and the console errors and exceptions it raised."""
    page = browser.new_page(**options)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))
    page.goto(page_path.as_uri())
    return page, errors


def _internal_links(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        "a[href], link[href], script[src]",
        "nodes => nodes.map(n => n.href || n.src)")


def _check_pages(browser: Any, out: Path, pages: list[Path]) -> None:
    for path in pages:
        page, errors = _open(browser, path)
        for link in _internal_links(page):
            if link.startswith("file://"):
                target = Path(re.sub(r"#.*$", "", link.removeprefix("file://")))
                assert target.is_file(), f"{path.relative_to(out)} links to a missing {target}"
            else:
                assert link.startswith("https://example.com/"), link  # only --commit-url's
        page.close()
        assert errors == [], f"{path.relative_to(out)}: {errors}"


def _screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=False)


def test_every_page_of_this_registry_loads_and_every_link_resolves(browser: Any,
                                                                   small_site: Path) -> None:
    _check_pages(browser, small_site, sorted(small_site.rglob("*.html")))


def test_search_filters_the_index_as_you_type(browser: Any, small_site: Path) -> None:
    page, errors = _open(browser, small_site / "index.html")
    rows = page.locator("#models tbody tr")
    total = rows.count()
    assert total >= 2
    page.fill("#search", "fraud")
    visible = [row.inner_text() for row in rows.all() if row.is_visible()]
    assert visible and all("fraud" in text for text in visible) and len(visible) < total
    assert page.inner_text("#count") == f"{len(visible)} model" + ("s" if len(visible) != 1
                                                                    else "")
    page.fill("#search", "")
    page.select_option("#environment", "production")
    served = [row for row in rows.all() if row.is_visible()]
    assert 0 < len(served) <= total
    _screenshot(page, "index.png")
    assert errors == []


def test_the_timeline_and_lineage_graph_are_drawn(browser: Any, small_site: Path) -> None:
    page, errors = _open(browser, small_site / "models" / "fraud.html")
    timelines = page.locator("#timeline ~ figure svg, section[aria-labelledby=timeline] svg")
    assert timelines.count() >= 2  # staging and production
    box = timelines.first.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 20
    assert timelines.first.locator("rect").count() >= 1
    assert page.locator("section[aria-labelledby=timeline] svg g.canary").count() >= 1
    assert "rollback" in page.inner_text("section[aria-labelledby=timeline]")
    assert page.locator("section[aria-labelledby=versions] svg").count() >= 1  # auc chart
    _screenshot(page, "model.png")
    page.close()
    churn, more = _open(browser, small_site / "models" / "churn.html")  # trained on a dataset
    graph = churn.locator("section[aria-labelledby=lineage] svg")
    assert graph.count() == 1 and graph.locator("line, path").count() >= 1
    assert "transactions@2024-06" in graph.text_content()
    churn.close()
    assert more == []
    for kind in ("environments", "datasets"):
        folder = small_site / kind
        first = sorted(folder.glob("*.html"))
        if first:
            shown, more = _open(browser, first[0])
            _screenshot(shown, f"{kind[:-1]}.png")
            assert more == []
            shown.close()
    assert errors == []


def test_the_keyboard_reaches_the_content_and_a_phone_reads_the_tables(
        browser: Any, small_site: Path) -> None:
    page, _ = _open(browser, small_site / "models" / "fraud.html")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#main"
    page.close()
    phone, errors = _open(browser, small_site / "index.html",
                          viewport={"width": 390, "height": 844}, is_mobile=True)
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    _screenshot(phone, "index-phone.png")
    assert errors == []


def test_a_thousand_models_load_link_and_search(browser: Any, large_site: Path) -> None:
    """Every page's links are checked on disk; a sample of each kind is loaded in the
    browser (a thousand page loads would take the suite's budget)."""
    pages = sorted(large_site.rglob("*.html"))
    assert len(pages) > 1000
    for path in pages:
        for link in re.findall(r'(?:href|src)="([^"#:]+)', path.read_text()):
            assert (path.parent / link).is_file(), f"{path}: {link}"
    sample = [large_site / "index.html", large_site / "environments.html",
              large_site / "datasets.html", *sorted((large_site / "models").glob("*.html"))[::97],
              *sorted((large_site / "environments").rglob("*.html"))[:4],
              *sorted((large_site / "datasets").glob("*.html"))[:3]]
    _check_pages(browser, large_site, sample)
    page, errors = _open(browser, large_site / "index.html")
    page.fill("#search", "model-00999")
    assert page.inner_text("#count") == "1 model"
    _screenshot(page, "index-1000-models.png")
    assert errors == []
