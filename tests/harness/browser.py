"""A headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driven by Selenium, for UI tests.

The UI end-to-end tests open pages of a real api-server as a logged-in user: ``login`` puts the
Airflow UI's ``_token`` cookie on the api-server's origin (a cookie can only be set for the page
the browser is on, so it visits the origin first), ``open`` loads a page and waits for a CSS
selector, ``screenshot`` saves a PNG into the artefact folder (``tests/artifacts/ui/``, or
``$AIRFLOW_CLAUDE_ARTIFACTS`` when set) so a CI run keeps what the pages looked like.

``scripts/browser.sh`` installs the browser and its driver; ``selenium`` comes with the ``dev``
extra. Selenium is imported when a browser starts, so importing this module costs nothing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARGUMENTS: tuple[str, ...] = ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_ARTIFACTS_ENV = "AIRFLOW_CLAUDE_ARTIFACTS"


class BrowserUnavailable(RuntimeError):
    """The browser, its driver or selenium is missing: ``scripts/browser.sh`` and the dev extra install them."""


def artifacts_dir() -> Path:
    """The folder screenshots go to (created): ``$AIRFLOW_CLAUDE_ARTIFACTS`` or ``tests/artifacts/ui/``."""
    configured = os.environ.get(_ARTIFACTS_ENV)
    folder = Path(configured) if configured else Path(__file__).resolve().parents[1] / "artifacts" / "ui"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def is_png(path: Path, min_bytes: int = 2000) -> bool:
    """Whether ``path`` is a PNG of at least ``min_bytes`` (a blank page compresses to less)."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    return data.startswith(PNG_MAGIC) and len(data) >= min_bytes


def missing_requirements() -> list[str]:
    """What is missing to start a browser (empty when everything is there)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -e '.[dev]')")
    return missing


class Browser:
    """One headless Chromium session; use as a context manager so the driver always quits."""

    def __init__(self, artifacts: Path | None = None, page_load_timeout: float = 60.0) -> None:
        self.artifacts = artifacts
        self.page_load_timeout = page_load_timeout
        self._driver: Any = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> Browser:
        missing = missing_requirements()
        if missing:
            raise BrowserUnavailable(f"cannot start headless Chromium, missing: {missing}; run scripts/browser.sh")
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service

        options = Options()
        options.binary_location = str(CHROMIUM)
        for argument in ARGUMENTS:
            options.add_argument(argument)
        # never route 127.0.0.1 through a proxy the environment may name
        options.add_argument("--no-proxy-server")
        self._driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        self._driver.set_page_load_timeout(self.page_load_timeout)
        return self

    def quit(self) -> None:
        if self._driver is not None:
            try:
                self._driver.quit()
            finally:
                self._driver = None

    def __enter__(self) -> Browser:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.quit()

    @property
    def driver(self) -> Any:
        """The Selenium WebDriver (started)."""
        if self._driver is None:
            raise RuntimeError("browser not started")
        return self._driver

    # ---------------------------------------------------------------- pages

    def login(self, url: str, token: str) -> None:
        """Set the Airflow UI's ``_token`` cookie for the origin of ``url`` (visits a cheap page there first)."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        self.driver.get(f"{origin}/api/v2/monitor/health")
        self.driver.delete_all_cookies()
        self.driver.add_cookie({"name": "_token", "value": token, "path": "/"})

    def open(self, url: str, wait_for: str | None = None, timeout: float = 30.0, token: str | None = None) -> Any:
        """Load ``url`` (logged in with ``token`` when given); wait for ``wait_for`` and return that element."""
        if token is not None:
            self.login(url, token)
        self.driver.get(url)
        return self.wait_for(wait_for, timeout) if wait_for else None

    def wait_for(self, css: str, timeout: float = 30.0) -> Any:
        """The first element matching ``css`` once it is present; a timeout names the selector and the page."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, timeout).until(
                expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
            )
        except TimeoutException:
            raise AssertionError(
                f"{css!r} not on {self.driver.current_url} after {timeout:.0f}s; page starts with:\n"
                f"{self.page_source[:3000]}"
            ) from None

    def wait_for_text(self, text: str, timeout: float = 30.0) -> Any:
        """The first element whose own text is exactly ``text`` (e.g. a tab of the Airflow UI), once present."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        if '"' in text:
            raise ValueError("text with a double quote is not supported")
        xpath = f'//*[normalize-space(text())="{text}"]'
        try:
            return WebDriverWait(self.driver, timeout).until(
                expected_conditions.presence_of_element_located((By.XPATH, xpath))
            )
        except TimeoutException:
            raise AssertionError(
                f"no element with text {text!r} on {self.driver.current_url} after {timeout:.0f}s"
            ) from None

    def enter_frame(self, css: str, timeout: float = 30.0) -> Any:
        """Switch into the iframe matching ``css`` (``leave_frame`` goes back); returns the iframe element."""
        frame = self.wait_for(css, timeout)
        self.driver.switch_to.frame(frame)
        return frame

    def leave_frame(self) -> None:
        self.driver.switch_to.default_content()

    def find_all(self, css: str) -> list[Any]:
        """Every element matching ``css`` (possibly none)."""
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def click(self, css: str, timeout: float = 30.0) -> None:
        """Click the first element matching ``css`` once it is clickable."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        element = WebDriverWait(self.driver, timeout).until(
            expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, css))
        )
        element.click()

    @property
    def page_source(self) -> str:
        return str(self.driver.page_source)

    @property
    def current_url(self) -> str:
        return str(self.driver.current_url)

    def screenshot(self, name: str) -> Path:
        """Save the viewport as ``<artefacts>/<name>.png`` and return the path."""
        folder = self.artifacts or artifacts_dir()
        folder.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "page"
        path = folder / f"{safe}.png"
        if not self.driver.save_screenshot(str(path)):
            raise AssertionError(f"Chromium could not save a screenshot to {path}")
        return path
