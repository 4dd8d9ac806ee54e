"""Fixtures for the real-browser test: a private JupyterLab and headless Chromium.

These tests start a server and a browser, so ``make test`` (``pytest tests notebooks``) does
not collect them: they run only under ``make test-browser``, which sets
``COURSE_BROWSER_TESTS=1``. There they never skip: a missing Chromium is a failure.

Knobs (environment variables): ``BROWSER_NOTEBOOK`` (which notebook, see lab_notebooks.py),
``CHROMIUM`` (the browser executable, default ``chromium`` on PATH).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from lab_notebooks import NOTEBOOK_ENV, choose_notebook
from lab_server import LabServer, start_lab, stop_lab

if TYPE_CHECKING:  # only for the annotation: `make test` loads this file without Playwright
    from playwright.sync_api import BrowserContext

BROWSER_TESTS_ENV = "COURSE_BROWSER_TESTS"
CHROMIUM_ENV = "CHROMIUM"

# The fixture notebook is driven in the browser, never compared by nbval.
collect_ignore_glob = ["*.ipynb"]
if os.environ.get(BROWSER_TESTS_ENV) != "1":
    collect_ignore_glob.append("test_*.py")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Give the chosen notebook to tests that ask for ``notebook_source``, named in the test id
    (e.g. ``test_student_runs_notebook[05_chain_rule.ipynb]``)."""
    if "notebook_source" in metafunc.fixturenames:
        source = choose_notebook(os.environ.get(NOTEBOOK_ENV))
        metafunc.parametrize("notebook_source", [source], ids=[source.name])


@pytest.fixture(scope="session")
def chromium_executable() -> Path:
    """The Chromium to drive; fails (never skips) with the install command if it is missing."""
    name = os.environ.get(CHROMIUM_ENV, "chromium")
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"Chromium not found ({CHROMIUM_ENV}={name!r} is not an executable on "
                    "PATH). Install it with `apt-get install -y chromium` (what "
                    "`make test-browser` does) or set CHROMIUM=/path/to/chromium.",
                    pytrace=False)
    return Path(found)


@pytest.fixture(scope="session")
def lab_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder JupyterLab serves: tests put their notebook copies here."""
    return tmp_path_factory.mktemp("lab-root")


@pytest.fixture(scope="session")
def lab(lab_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """A private JupyterLab serving ``lab_root``; stopped at the end whatever happens."""
    home = tmp_path_factory.mktemp("lab-home")
    # Figures the notebooks save go to a scratch folder, not the committed figures/.
    extra_env = {"COURSE_FIGURES_DIR": str(home / "figures")}
    server = start_lab(lab_root, home, extra_env)
    try:
        yield server
    finally:
        stop_lab(server)


@pytest.fixture(scope="session")
def browser(chromium_executable: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """Headless Chromium (a Playwright BrowserContext) with a fresh profile; closed at the end."""
    # Imported here, not at the top: `make test` loads this file too, and needs no Playwright.
    from lab_page import launch_chromium
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = launch_chromium(playwright, chromium_executable, profile)
        try:
            yield context
        finally:
            context.close()
