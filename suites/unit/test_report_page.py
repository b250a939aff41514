"""The HTML report in a real browser: Debian's headless chromium, driven through chromedriver.

The page is rendered from the real sample results, opened from a file (it must need no network),
filtered and clicked; a screenshot is kept in reports/out/report-page.png.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from reports.html import render_html
from reports.record import Results
from reports.summary import overview

SAMPLE = Path(__file__).with_name("data") / "results-sample.json"
OUT = Path(__file__).resolve().parents[2] / "reports" / "out"
SCREENSHOT, FIRST_SCREEN = OUT / "report-page.png", OUT / "report-page-first-screen.png"
# As root, on a machine with no route out: no sandbox, and none of Chromium's background traffic.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1600,1000",
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.fail("Debian's chromium and chromium-driver are needed: make check installs them (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()


def test_report_page_filters_and_shows_a_case(browser: webdriver.Chrome, tmp_path: Path) -> None:
    document = Results.from_json(json.loads(SAMPLE.read_text()))
    page = tmp_path / "report.html"
    page.write_text(render_html(document))
    browser.get(page.as_uri())

    # The page opens on the overview: one row per rule, one cell per kernel, regressions coloured.
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("MADV_COLLAPSE conformance REGRESSION")
    assert browser.find_element(By.ID, "overview").location["y"] < browser.find_element(By.ID, "matrix").location["y"]
    overview_rows = browser.find_elements(By.CSS_SELECTOR, "#overview tbody tr")
    assert len(overview_rows) == len(overview(document))
    OUT.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(FIRST_SCREEN))
    refused = browser.find_element(By.CSS_SELECTOR, '#overview tr[data-rule="A8.refused"]')
    assert [td.text for td in refused.find_elements(By.CSS_SELECTOR, "td.cell")][-1] == "FAIL 8/8"
    assert browser.find_elements(By.CSS_SELECTOR, "#failures li.FAIL")
    refused.find_element(By.CSS_SELECTOR, "td.label").click()  # a rule's name filters the full table to it
    assert {r.get_attribute("data-rule") for r in browser.find_elements(By.CSS_SELECTOR, "#matrix tbody tr:not(.rule)")} == {"A8.refused"}
    Select(browser.find_element(By.ID, "f-rule")).select_by_index(0)

    rows = browser.find_elements(By.CSS_SELECTOR, "#matrix tbody tr:not(.rule)")
    cells = browser.find_elements(By.CSS_SELECTOR, "#matrix td.cell")
    kernels = len(document.kernels)
    assert len(rows) > 0 and len(cells) == len(rows) * kernels
    assert browser.find_elements(By.CSS_SELECTOR, "td.cell.FAIL"), "the sample's FAIL cells are coloured"

    Select(browser.find_element(By.ID, "f-verdict")).select_by_visible_text("FAIL")
    failing_rows = browser.find_elements(By.CSS_SELECTOR, "#matrix tbody tr:not(.rule)")
    assert 0 < len(failing_rows) < len(rows)
    assert all(r.find_elements(By.CSS_SELECTOR, "td.cell.FAIL") for r in failing_rows)

    Select(browser.find_element(By.ID, "f-kernel")).select_by_index(1)  # one kernel column left
    assert len(browser.find_elements(By.CSS_SELECTOR, "#matrix thead th")) == 2

    Select(browser.find_element(By.ID, "f-kernel")).select_by_index(0)
    failing = browser.find_element(By.CSS_SELECTOR, "#matrix td.cell.FAIL")
    # Below the overview now: centre it, or the table's sticky header would take the click.
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", failing)
    failing.click()
    detail = browser.find_element(By.ID, "detail")
    assert detail.is_displayed()
    shown = json.loads(browser.find_element(By.ID, "detail-body").text)
    assert shown["verdict"] == "FAIL"
    assert {"parameters", "expected", "observed", "duration_s", "console"} <= shown.keys()
    assert shown["expected"] != shown["observed"]
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))
