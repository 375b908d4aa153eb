"""The console in a real browser: Debian's Chromium (Selenium), the server on a free 127.0.0.1 port."""

from __future__ import annotations

from pathlib import Path

import pytest
from web_kit import DEMO_NOW, copy_demo, filled_return, have_chromium, make_demo, running_server

from automation.ledger import Ledger

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not have_chromium(), reason="chromium / chromedriver not installed")]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("browser")
    return copy_demo(make_demo(root), root / "ws")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from web_kit import chromium

    driver = chromium(tmp_path_factory.mktemp("chrome"))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def site(demo):  # type: ignore[no-untyped-def]
    with running_server(demo) as url:
        yield url


def _wait(browser, condition, timeout: float = 60):  # type: ignore[no-untyped-def]
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout, poll_frequency=0.2).until(condition)


def _fetch_post(browser, path: str, with_token: bool) -> int:  # type: ignore[no-untyped-def]
    """A POST from the page's own script context (same origin, the session cookie sent)."""
    return int(browser.execute_async_script(
        """const [path, withToken, done] = arguments;
           fetch('/api/session').then(r => r.json()).then(s => {
             const body = new FormData(); if (withToken) body.append('csrf_token', s.csrf_token);
             return fetch(path, {method: 'POST', body, redirect: 'manual'});
           }).then(r => done(r.status || 303), e => done(-1));""", path, with_token))


def test_overview_of_the_demo(browser, site) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    browser.get(site + "/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "2021年南平市政务公开重点工作"
    cards = browser.find_element(By.CLASS_NAME, "cards").text
    assert "84.5%" in cards and "剩余 1 个工作日" in cards and "3 个" in cards
    rows = browser.find_elements(By.CSS_SELECTOR, "table.units tbody tr")
    assert len(rows) == 37
    assert [r.find_elements(By.TAG_NAME, "td")[3].text for r in rows[:4]] == ["未报送", "未报送", "未报送", "推进中"]
    assert browser.find_element(By.CSS_SELECTOR, "svg.chart rect").is_displayed()
    # No script errors under the content-security policy (console.js loads from 'self').
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def test_upload_through_the_page_changes_the_units_progress(browser, site, demo, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    path = filled_return(demo, "市城管局", tmp_path / "城管局报送.xlsx", status="推进中")
    browser.get(site + "/collect")
    browser.find_element(By.ID, "files").send_keys(str(path))
    browser.find_element(By.CSS_SELECTOR, "#upload button").click()
    table = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "table.results"))
    assert "城管局报送.xlsx" in table[0].text and "已接收 28 项" in table[0].text
    browser.get(site + "/")
    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "table.units tbody tr") if "市城管局" in r.text)
    cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
    assert cells[3] == "推进中" and cells[6] == "28"           # no longer 未报送: 28 tasks under way
    assert "未报送的单位（2 个）" in browser.page_source


def test_import_preview_with_an_unknown_unit(browser, site, demo, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    table = tmp_path / "任务表.txt"
    table.write_text(demo.batch.tasks.read_text(encoding="utf-8").replace("市财政局", "市财正局", 1), encoding="utf-8")
    browser.get(site + "/tasks")
    browser.find_element(By.NAME, "table").send_keys(str(table))
    browser.find_element(By.CSS_SELECTOR, "form.box button").click()
    _wait(browser, lambda d: "预览" in d.title)
    unknown = browser.find_element(By.CSS_SELECTOR, "tr.unknown").text
    assert "市财正局" in unknown and "市财政局" in unknown
    assert not browser.find_element(By.CSS_SELECTOR, "form.box button").is_enabled()


def test_post_without_csrf_token_is_refused(browser, site, demo) -> None:  # type: ignore[no-untyped-def]
    browser.get(site + "/remind")
    assert _fetch_post(browser, "/report", with_token=False) == 403
    with Ledger.open(demo.workspace) as led:
        assert not led.execute("SELECT 1 FROM events WHERE kind = 'report'").fetchall()


def test_login_and_a_viewer_cannot_post(browser, tmp_path, demo) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    config = copy_demo(Path(demo.path), tmp_path / "accounts")
    with Ledger.open(config.workspace) as led:
        led.save_account("督查室", "viewer", "viewer pass", DEMO_NOW)
    with running_server(config) as url:
        browser.delete_all_cookies()
        browser.get(url + "/send")
        assert "/login" in browser.current_url
        browser.find_element(By.NAME, "name").send_keys("督查室")
        browser.find_element(By.NAME, "password").send_keys("wrong password")
        browser.find_element(By.CSS_SELECTOR, "form.login button").click()
        _wait(browser, lambda d: "账号或密码不正确" in d.page_source)
        browser.find_element(By.NAME, "name").clear()
        browser.find_element(By.NAME, "name").send_keys("督查室")
        browser.find_element(By.NAME, "password").send_keys("viewer pass")
        browser.find_element(By.CSS_SELECTOR, "form.login button").click()
        _wait(browser, lambda d: d.current_url.endswith("/send") and "只读账号" in d.page_source)
        assert "只读账号" in browser.page_source and "督查室（只读）" in browser.page_source
        assert not browser.find_elements(By.CSS_SELECTOR, ".actions button")
        assert _fetch_post(browser, "/send", with_token=True) == 403
        browser.delete_all_cookies()
