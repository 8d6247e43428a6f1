"""The page in a real browser (Debian's chromium, headless, driven through chromedriver)
against a real uvicorn server over a real history."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dashboard.conftest import ADMIN_TOKEN, serve
from tests.dashboard.history import PROMOTE_REASON, ROLLBACK_REASON, History

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"

if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip("chromium and chromium-driver are not installed (apt-get install chromium "
                "chromium-driver; .ci/run does)", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")

from selenium.common.exceptions import (  # noqa: E402
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1400,1800"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, condition: Callable[[Any], Any], seconds: float = 20) -> Any:
    # The page re-renders on every poll: an element found a moment ago may be gone.
    return WebDriverWait(driver, seconds, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException,)).until(condition)


def _points(driver: Any) -> dict[str, list[int]]:
    """Non-empty data points per dataset of each time chart, read from Chart.js itself."""
    return driver.execute_script("""
        const found = {};
        for (const id of ["chart-metric", "chart-requests", "chart-errors", "chart-latency",
                          "chart-coverage"]) {
          const chart = Chart.getChart(document.getElementById(id));
          found[id] = chart.data.datasets.map(d => d.data.filter(p => p.y !== null).length);
        }
        return found;""")


def _events(driver: Any, kind: str) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll(`#events li[data-kind='${arguments[0]}']`)]"
        ".map(e => e.textContent);", kind)


def _has(driver: Any, css: str) -> bool:
    try:
        return driver.find_element(By.CSS_SELECTOR, css).is_displayed()
    except (NoSuchElementException, StaleElementReferenceException):
        return False


def _text(driver: Any, element_id: str) -> str:
    return driver.execute_script(
        "const e = document.getElementById(arguments[0]); return e ? e.textContent : '';",
        element_id)


def test_page_renders_history_and_rolls_back_with_a_token(history: History,
                                                          browser: Any) -> None:
    project = history.project
    with serve(project, admin_token=ADMIN_TOKEN, poll_seconds=1.0) as served:
        browser.get(served.url + "/")
        _wait(browser, lambda d: d.execute_script("return document.body.dataset.loaded"))
        _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#drift-features figure"))

        points = _points(browser)
        assert len(points["chart-requests"]) == 3, points  # v1, v2, v3
        for chart, datasets in points.items():
            assert datasets and min(datasets) > 0, (chart, points)
        assert _text(browser, "champion-version").startswith("v3")
        assert _text(browser, "drift-share").startswith(
            f"{100 * _drift_share(served.url):.1f}%")
        drift_bars = browser.execute_script(
            "const c = Chart.getChart(document.querySelector('#drift-features canvas'));"
            "return [c.data.datasets[0].data.length, c.data.datasets[1].data.length];")
        assert min(drift_bars) >= 2

        assert any(PROMOTE_REASON in text for text in _events(browser, "promoted"))
        assert any(ROLLBACK_REASON in text for text in _events(browser, "rolled_back"))
        markers = browser.execute_script(
            "return Chart.getChart(document.getElementById('chart-requests'))"
            ".config.plugins === undefined")
        assert markers is True  # the event-line plugin is registered globally, not per chart

        SCREENSHOT.parent.mkdir(exist_ok=True)
        browser.save_screenshot(str(SCREENSHOT))

        # Read-only without a token; a wrong token is refused with the server's message.
        assert not _has(browser, "#rollback-button")
        browser.find_element(By.ID, "token").send_keys("guess")
        browser.find_element(By.CSS_SELECTOR, "#token-form button").click()
        _wait(browser, lambda d: "wrong admin token" in d.find_element(
            By.ID, "admin-message").text)
        assert not _has(browser, "#rollback-button")

        token = browser.find_element(By.ID, "token")
        token.clear()
        token.send_keys(ADMIN_TOKEN)
        browser.find_element(By.CSS_SELECTOR, "#token-form button").click()
        button = _wait(browser, lambda d: _has(d, "#rollback-button")
                       and d.find_element(By.ID, "rollback-button"))
        assert button.text == "Roll back v3 → v1"
        browser.find_element(By.ID, "action-reason").send_keys("canary looked wrong")

        button.click()  # asks first; dismissing changes nothing
        _wait(browser, expected_conditions.alert_is_present()).dismiss()
        time.sleep(0.5)
        assert project.registry.state().champion == 3

        browser.find_element(By.ID, "rollback-button").click()
        _wait(browser, expected_conditions.alert_is_present()).accept()
        _wait(browser, lambda d: project.registry.state().champion == 1)
        _wait(browser, lambda d: _text(d, "champion-version").startswith("v1"))
        _wait(browser, lambda d: any("canary looked wrong" in text
                                     for text in _events(d, "rolled_back")))
        assert served.hooks.reloads == 1

        # Read while the server still runs (the page keeps polling): the wrong token's
        # 401 is the only failed request, and no script error happened.
        severe = [entry["message"] for entry in browser.get_log("browser")
                  if entry["level"] == "SEVERE"]
        assert len(severe) == 1 and "/api/auth" in severe[0] and "401" in severe[0], severe


def test_unknown_model_in_the_address_shows_the_servers_message(history: History,
                                                                browser: Any) -> None:
    with serve(history.project, admin_token=None) as served:
        browser.get(served.url + "/?model=fraud")
        _wait(browser, lambda d: d.execute_script("return document.body.dataset.loaded"))
        banner = browser.find_element(By.ID, "banner")
        assert banner.is_displayed()
        assert banner.text == "unknown model 'fraud': this server tracks 'loan-default'"


def _drift_share(url: str) -> float:
    import httpx

    return float(httpx.get(url + "/api/drift", timeout=30).json()["drift_share"])
