"""`synpo-report DIR` writes report/index.html, loaded here in a real headless Chromium (Debian's `chromium` and
`chromium-driver`, which .ci/run installs) through selenium: every plot loads and the page logs no console error."""

from __future__ import annotations

import json
import shutil

import pytest
from test_report_and_cache_cli import make_job

from synpo.report import main as report_main

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver")


@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: selenium's manager never looks for (or downloads) a browser of its own.
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    yield driver
    driver.quit()


def page_state(driver, path) -> tuple[list, list, str]:
    driver.get(path.as_uri())
    images = driver.execute_script(
        "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])"
    )
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    return images, errors, driver.find_element("tag name", "body").text


def test_index_html_loads_in_headless_chromium_with_every_plot(tmp_path, browser):
    evaluation = {
        f"M{t}": {"alpaca_eval_mini": {"metrics": {"length_controlled_winrate": 10.0 + t, "win_rate": 9.0 + t}}}
        for t in (0, 1, 2)
    }
    run = tmp_path / "run"
    make_job(run, ["optimizer.beta=2"], evaluation)
    for t in (1, 2):
        pairs = run / "stages" / f"iter{t}" / "pairs"
        pairs.mkdir(parents=True)
        rows = [
            {"id": f"p{i}", "prompt": f"<script>alert({i})</script> question {i}", "rejected": "no", "chosen": "yes"}
            for i in range(5)
        ]
        (pairs / "pairs.jsonl").write_text("".join(json.dumps({**r, "gap": 0.5}) + "\n" for r in rows))
    assert report_main([str(run)]) == 0
    index = run / "report" / "index.html"
    images, errors, text = page_state(browser, index)
    plots = sorted(p.name for p in (run / "report").glob("*.png"))
    assert len(plots) >= 4 and sorted(src for src, _, _ in images) == plots
    assert all(complete and width > 0 for _, complete, width in images), images
    assert errors == []
    assert "Results" in text and "Mistral-Base" in text  # the table with the paper's rows
    assert "run: iter1/pairs" in text and "run: iter2/pairs" in text
    assert text.count("<script>alert(") == 2 * 3  # the first 3 pairs per iteration, escaped, not run

    # The checks above can fail: a page with a missing image logs an error and has a zero-width image.
    broken = tmp_path / "broken.html"
    broken.write_text('<!DOCTYPE html><html><head><link rel=icon href="data:,"></head><body><img src="gone.png">')
    images, errors, _ = page_state(browser, broken)
    assert images[0][2] == 0 and errors
