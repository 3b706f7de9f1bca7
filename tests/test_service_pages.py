"""The service's pages work offline: the intake page at ``/`` and Swagger UI at ``/docs`` load
nothing from another host; a headless Chromium fills the form and sees the referral and plan."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from live_server import serving

pytest.importorskip("fastapi", reason="the service extra is not installed")

from fastapi.testclient import TestClient

from hipscreen import _service
from hipscreen._service_pages import INTAKE_PAGE, swagger_assets

REFERRED = {"tightness": {"iliopsoas": 3}, "strength": {"gluteus_maximus": 2}}


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(_service.create_app())


def _outside_urls(html: str) -> list[str]:
    """URLs in src/href/url() or fetch() that point to another host."""
    found = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(\s*["']?([^"')]+)""", html)
    urls = [a or b for a, b in found]
    urls += re.findall(r"""fetch\(\s*["']([^"']+)["']""", html)
    return [u for u in urls if re.match(r"(?i)^(https?:)?//", u)]


def test_the_intake_page_loads_nothing_from_elsewhere(client: TestClient) -> None:
    answer = client.get("/")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.text == INTAKE_PAGE
    assert _outside_urls(INTAKE_PAGE) == []


def test_swagger_ui_is_served_from_packaged_assets(client: TestClient) -> None:
    assert swagger_assets() is not None, "fastapi-offline is part of the service extra"
    page = client.get("/docs")
    assert page.status_code == 200
    assert _outside_urls(page.text) == []
    for asset in re.findall(r"""(?:src|href)="(static/[^"]+)\"""", page.text):
        assert client.get(f"/{asset}").status_code == 200, asset
    redoc = client.get("/redoc")
    assert redoc.status_code == 200
    assert _outside_urls(redoc.text) == []


def test_assess_html_answers_the_assessment_as_html(client: TestClient) -> None:
    answer = client.post("/assess/html", json=REFERRED)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert 'class="referral"' in answer.text
    assert "<h4>Plan</h4>" in answer.text
    assert client.post("/assess/html", json={"age": -1}).status_code == 422


def _browser() -> tuple[str, str] | None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    audit = tmp_path_factory.mktemp("audit") / "audit.sqlite3"
    with serving("--log-level", "error", "--audit-db", str(audit)) as (port, _):
        yield port


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    found = _browser()
    if found is None:
        pytest.skip(
            "no Chromium with chromedriver: apt-get install -y chromium chromium-driver "
            "(Debian) to run the browser tests"
        )
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    chromium, driver = found
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        # offline: every host but this machine fails to resolve
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=driver, log_output=subprocess.DEVNULL)
    session = webdriver.Chrome(options=options, service=service)
    session.set_page_load_timeout(30)
    try:
        yield session
    finally:
        session.quit()


def _wait(session: Any, script: str, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = session.execute_script(script)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {script}")


@pytest.mark.slow
@pytest.mark.process
def test_a_browser_screens_a_form_offline(live: int, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"http://127.0.0.1:{live}/")
    _wait(browser, "return document.body.dataset.ready === 'yes'")
    browser.find_element(By.CSS_SELECTOR, "[data-path='tightness.iliopsoas']").send_keys("3")
    browser.find_element(By.CSS_SELECTOR, "[data-path='strength.gluteus_maximus']").send_keys("2")
    browser.find_element(By.ID, "screen").click()
    banner = _wait(browser, "return document.querySelector('#result .referral')?.textContent")
    assert "See" in banner
    headings = browser.execute_script(
        "return [...document.querySelectorAll('#result h4')].map(h => h.textContent)"
    )
    assert "Plan" in headings
    assert browser.find_element(By.ID, "problems").text == ""


@pytest.mark.slow
@pytest.mark.process
def test_a_browser_shows_a_problem_with_its_field(live: int, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"http://127.0.0.1:{live}/")
    _wait(browser, "return document.body.dataset.ready === 'yes'")
    field = browser.find_element(By.CSS_SELECTOR, "[data-path='age']")
    browser.execute_script("arguments[0].removeAttribute('min'); arguments[0].value='-4'", field)
    browser.find_element(By.ID, "screen").click()
    problem = _wait(browser, "return document.getElementById('problems').textContent")
    assert problem.startswith("age:")


@pytest.mark.slow
@pytest.mark.process
def test_swagger_ui_renders_offline_in_a_browser(live: int, browser: Any) -> None:
    """Swagger UI 5 shows the OpenAPI 3.1 document (Swagger UI 4 cannot)."""
    browser.get(f"http://127.0.0.1:{live}/docs")
    title = _wait(browser, "return document.querySelector('.swagger-ui .info .title')?.textContent")
    assert title.startswith("hipscreen")
    paths = browser.execute_script(
        "return [...document.querySelectorAll('.opblock-summary-path')].map(e => e.textContent)"
    )
    assert "/cds-services/hipscreen" in [p.replace("\u200b", "") for p in paths]


def test_pages_module_has_no_cdn() -> None:
    source = Path(__file__).parent.parent / "hipscreen" / "_service_pages.py"
    assert _outside_urls(source.read_text(encoding="utf-8")) == []
