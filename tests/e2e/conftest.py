"""Browser tests need Debian's chromium and playwright-core: installed by install-browser.sh."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def browser_ready() -> Path:
    subprocess.run(["bash", str(HERE / "install-browser.sh")], check=True, timeout=900)
    assert (HERE / "node_modules" / "playwright-core").is_dir() and Path("/usr/bin/chromium").exists()
    return HERE
