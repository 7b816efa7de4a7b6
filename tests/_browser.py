"""A headless Chromium for the browser tests: the system's `chromium` and `chromium-driver` (Debian packages),
never a browser selenium downloads. Tests skip, saying why, where either is missing (`make test` installs
them when it runs as root with apt-get)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CANDIDATES = {"chromium": ("/usr/bin/chromium", "chromium"), "chromedriver": ("/usr/bin/chromedriver", "chromedriver")}


def _find(name: str) -> str | None:
    for candidate in CANDIDATES[name]:
        found = candidate if Path(candidate).is_file() else shutil.which(candidate)
        if found:
            return found
    return None


@contextmanager
def chrome() -> Iterator[Any]:
    """`with chrome() as driver:` a headless Chromium WebDriver, quit afterwards; or a skip naming what is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
    from selenium.webdriver.chrome.service import Service

    browser, driver = _find("chromium"), _find("chromedriver")
    if browser is None or driver is None:
        missing = " and ".join(n for n, f in (("chromium", browser), ("chromedriver", driver)) if f is None)
        pytest.skip(
            f"{missing} not found: browser tests need Debian's chromium and chromium-driver "
            "(sudo apt-get install chromium chromium-driver; `make test` does it when run as root)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        "--allow-file-access-from-files",
    ):
        options.add_argument(arg)
    try:
        # An explicit driver path: selenium-manager (which would download a browser) never runs.
        session = webdriver.Chrome(service=Service(driver), options=options)
    except Exception as e:  # a broken install (missing libraries, version mismatch): skip, say why
        pytest.skip(f"headless chromium did not start ({type(e).__name__}: {str(e).splitlines()[0][:200]})")
    try:
        yield session
    finally:
        session.quit()
