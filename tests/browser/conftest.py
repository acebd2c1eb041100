"""Fixtures for the browser end-to-end tests (JupyterLab in headless Debian Chromium; see ``harness.py``).

* ``chromium_executable`` -> ``Path``: the system Chromium; the test FAILS (never skips) when it is missing.
* ``jupyterlab_server`` -> ``JupyterLabServer``: one server for the whole ``tests/browser`` package.
* ``browser`` -> ``playwright.sync_api.Browser``: one headless Chromium for the package.
* ``lab`` -> ``LabPage``: a fresh browser context and page per test; afterwards every kernel is shut down, and
  a failed test leaves ``tests/artifacts/browser/<test name>-failure.png``.

The server and the browser are package-scoped, not session-scoped: Playwright's sync API keeps its event loop
marked as running on the main thread while it is started, which would break every asyncio test that runs
after the browser tests.
"""

from __future__ import annotations

import shutil
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from .harness import (
    ARTIFACTS_DIR,
    CHROMIUM_FLAGS,
    INSTALL_HINT,
    JupyterLabServer,
    LabPage,
    artifact_name,
    find_chromium,
)

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


@pytest.fixture(scope="package")
def chromium_executable() -> Path:
    return find_chromium()


@pytest.fixture(scope="package")
def browser_artifacts() -> Path:
    """``tests/artifacts/browser/``, emptied once per run: it holds this run's screenshots and server log."""
    shutil.rmtree(ARTIFACTS_DIR, ignore_errors=True)
    ARTIFACTS_DIR.mkdir(parents=True)
    return ARTIFACTS_DIR


@pytest.fixture(scope="package")
def jupyterlab_server(tmp_path_factory: pytest.TempPathFactory, browser_artifacts: Path) -> Iterator[JupyterLabServer]:
    server = JupyterLabServer.start(
        tmp_path_factory.mktemp("jupyterlab"), browser_artifacts / "jupyterlab-server.log", timeout=60.0
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="package")
def browser(chromium_executable: Path) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(
                executable_path=chromium_executable, headless=True, args=list(CHROMIUM_FLAGS), timeout=60_000
            )
        except PlaywrightError as exc:
            pytest.fail(f"Chromium at {chromium_executable} did not start: {exc}\n({INSTALL_HINT})", pytrace=False)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def lab(request: pytest.FixtureRequest, browser: Browser, jupyterlab_server: JupyterLabServer) -> Iterator[LabPage]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    context.set_default_timeout(30_000)
    page = context.new_page()
    lab_page = LabPage(page, jupyterlab_server, request.node.name)

    def on_console(message: ConsoleMessage) -> None:
        if message.type in {"error", "warning"}:
            lab_page.console.append(f"[{message.type}] {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: lab_page.console.append(f"[pageerror] {error}"))
    try:
        yield lab_page
    finally:
        reports = request.node.stash.get(_REPORTS, {})
        failure_png = ARTIFACTS_DIR / f"{artifact_name(request.node.name + '-failure')}.png"
        # LabPage.fail() took one at the moment of failure already; otherwise take it now.
        if any(report.failed for report in reports.values()) and not failure_png.exists():
            try:
                lab_page.screenshot(f"{request.node.name}-failure")
            except PlaywrightError:
                pass  # the page may be gone; the failure itself is what matters
        context.close()
        jupyterlab_server.shutdown_kernels()
