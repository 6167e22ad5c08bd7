"""A real headless Chromium (Debian's /usr/bin/chromium), driven by Playwright."""

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser(playwright):
    if not CHROMIUM.is_file():
        pytest.skip("no /usr/bin/chromium: `make test` installs it (apt-get install chromium)")
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


def _page(browser, viewport: dict, **options):
    context = browser.new_context(viewport=viewport, **options)
    context.set_default_timeout(120_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def page(browser):
    """A desktop window."""
    yield from _page(browser, {"width": 1280, "height": 900})


@pytest.fixture
def phone(browser):
    """A phone held upright (about an iPhone 14's screen)."""
    yield from _page(browser, {"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                     device_scale_factor=2)
