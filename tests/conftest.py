"""Test set-up. With RFIELD_REQUIRE_EXTRAS=1 (CI sets it) a test that would be skipped
for a missing framework or browser fails instead: a green run has tested every
front-end."""

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
# Keras picks its backend once, at its first import (whichever test module comes first):
# the in-process Keras tests run on JAX; test_keras_backends.py runs the others apart
os.environ.setdefault("KERAS_BACKEND", "jax")

REQUIRE_EXTRAS = os.environ.get("RFIELD_REQUIRE_EXTRAS") == "1"

if REQUIRE_EXTRAS:
    _importorskip = pytest.importorskip

    def _require(modname, *args, **kwargs):
        try:
            return _importorskip(modname, *args, **kwargs)
        except pytest.skip.Exception as exc:
            raise ImportError(f"RFIELD_REQUIRE_EXTRAS=1 but {modname} is missing: {exc}") \
                from None

    pytest.importorskip = _require



CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium through playwright (CI installs it; here a skip)."""
    if not CHROMIUM:
        if os.environ.get("CI"):
            pytest.fail("CI must have Debian's chromium (.ci/run installs it)")
        pytest.skip("chromium is not installed")
    sync = pytest.importorskip("playwright.sync_api")
    with sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield b
        b.close()
