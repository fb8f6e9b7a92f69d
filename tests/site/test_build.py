"""reconciler site: the registry's pages from the database, written all or nothing, with
every value a pull request wrote shown as text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconciler import api
from reconciler.diagnostics import ReconcilerError
from tests.conftest import Registry, model_manifest
from tests.test_validate import run_cli

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
AUTHOR = 'Mallory" onclick="alert(1)'  # git refuses < and > in a name


def _applied(history: Registry, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    api.db_upgrade(str(history.root), url)
    api.apply(str(history.root), url)
    return url


def _links(page: Path) -> list[str]:
    return re.findall(r'(?:href|src)="([^"#:]+)(?:#[^"]*)?"', page.read_text())


def test_every_page_is_built_and_every_link_resolves(history: Registry, tmp_path: Path) -> None:
    url = _applied(history, tmp_path)
    built = api.site(str(history.root), url, out="site",
                     commit_url="https://example.com/org/repo/commit/{sha}")
    out = Path(built.out)
    assert (out / "index.html").is_file() and (out / "static" / "site.css").is_file()
    models = sorted(p.name for p in (out / "models").iterdir())
    assert "fraud.html" in models and built.pages == len(list(out.rglob("*.html")))
    for page in out.rglob("*.html"):
        for link in _links(page):
            assert (page.parent / link).resolve().is_file(), f"{page}: {link}"
    fraud = (out / "models" / "fraud.html").read_text()
    assert "<svg" in fraud and "what production served over time" in fraud
    assert 'href="https://example.com/org/repo/commit/' in fraud
    assert "https://" not in (out / "static" / "site.css").read_text()  # nothing from elsewhere
    index = (out / "index.html").read_text()
    assert 'id="search"' in index and "<table" in index


def test_values_from_a_pull_request_are_text_never_markup(history: Registry,
                                                          tmp_path: Path) -> None:
    manifest = model_manifest("hostile", [("1.0.0", "models/fraud.pkl",
                                            history.digest("models/fraud.pkl"))])
    quoted = "'" + HOSTILE.replace("'", "''") + "'"
    history.write("manifests/models/hostile.yaml", manifest.replace(
        "metrics: {auc: 0.93}", f"metrics: {{auc: 0.93, {quoted}: 1}}").replace(
        "  owner: ml@example.com", f"  owner: ml@example.com\n  description: {quoted}"))
    dataset = history.root / "manifests" / "datasets" / "transactions.yaml"
    dataset.write_text(dataset.read_text().replace(
        "owner: data@example.com}", f"owner: data@example.com, description: {quoted}}}"))
    history.repo.git.add(A=True)
    history.repo.git.commit("-m", HOSTILE, f"--author={AUTHOR} <evil@example.com>")
    url = _applied(history, tmp_path)
    out = Path(api.site(str(history.root), url).out)
    pages = "\n".join(p.read_text() for p in out.rglob("*.html"))
    assert "<script>alert" not in pages and "<img src=x" not in pages
    assert 'onclick="alert' not in pages and "Mallory&#34; onclick=&#34;alert(1)" in pages
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in pages
    assert pages.count("<script") == 1  # the one shared script, on the index
    hostile = (out / "models" / "hostile.html").read_text()
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
    assert f'<p class="description">{escaped}</p>' in hostile  # the model's description
    assert f"<td>{escaped}</td>" in hostile  # the commit's message, in the audit log
    dataset_page = (out / "datasets" / "transactions.html").read_text()
    assert f'<p class="description">{escaped}</p>' in dataset_page  # the dataset's


def test_the_output_folder_is_replaced_whole_and_only_a_site(history: Registry,
                                                             tmp_path: Path) -> None:
    url = _applied(history, tmp_path)
    out = tmp_path / "pages"
    api.site(str(history.root), url, out=str(out))
    (out / "stale.html").write_text("from an older build")
    api.site(str(history.root), url, out=str(out))
    assert not (out / "stale.html").exists()
    elsewhere = tmp_path / "documents"
    elsewhere.mkdir()
    (elsewhere / "notes.txt").write_text("mine")
    with pytest.raises(ReconcilerError, match="did not write"):
        api.site(str(history.root), url, out=str(elsewhere))
    assert (elsewhere / "notes.txt").read_text() == "mine"
    link = tmp_path / "linked"
    link.symlink_to(out)  # a site replaced through a link would land where the link points
    with pytest.raises(ReconcilerError, match="not a folder"):
        api.site(str(history.root), url, out=str(link))
    done = run_cli(history, "site", "--db", url, "--commit-url", "javascript:alert(1)")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1


def test_long_logs_and_histories_are_paged_and_linked(history: Registry, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A page stays small however long a model's or an environment's history grows."""
    from reconciler.site import build

    monkeypatch.setattr(build, "LOG_ROWS", 3)
    monkeypatch.setattr(build, "HISTORY_ROWS", 2)
    url = _applied(history, tmp_path)
    out = Path(api.site(str(history.root), url).out)
    older = sorted(p.relative_to(out).as_posix() for p in (out / "models" / "history")
                   .rglob("*.html"))
    assert "models/history/fraud/2.html" in older
    assert (out / "environments" / "history" / "production" / "2.html").is_file()
    fraud = (out / "models" / "fraud.html").read_text()
    assert 'href="history/fraud/2.html"' in fraud
    for page in out.rglob("*.html"):
        for link in _links(page):
            assert (page.parent / link).resolve().is_file(), f"{page}: {link}"


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "x" * 300, "Upper",
                                  "trailing.", "nul\x00byte", "\udcff", ""])
def test_a_name_from_history_never_makes_a_path(name: str) -> None:
    """Page files are named after models, environments and datasets; a name that is not a
    plain file name (the database holds what history held) gets a digest instead."""
    from reconciler.site.build import page_name

    page = page_name(name)
    assert "/" not in page and "\\" not in page and not page.startswith(".")
    assert page.endswith(".html") and len(page) < 220
    assert page.startswith("n-")
    assert page_name("fraud-detector") == "fraud-detector.html"
