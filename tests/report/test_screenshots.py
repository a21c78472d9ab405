"""A quick run's report.html and the tour's index.html, drawn by headless Chromium.

Skipped where no Chromium is installed. Set TRAINLAB_SCREENSHOTS=DIR to keep the
PNGs and look at them.
"""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from trainlab.tour import run_tour

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
WIDTH, HEIGHT = 1200, 1600


def screenshot(page: Path, png: Path, profile: Path) -> np.ndarray:
    """Draw ``page`` at WIDTH x HEIGHT into ``png`` and return its pixels (H x W x channels, 0..1)."""
    cmd = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", f"--screenshot={png}", f"--window-size={WIDTH},{HEIGHT}",
           page.resolve().as_uri()]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert png.is_file(), f"chromium wrote no screenshot (exit {out.returncode}): {out.stderr[-2000:]}"
    return imread(png)


def assert_drawn(pixels: np.ndarray) -> None:
    """Not blank: many distinct colours, and a good share of the page is not white."""
    assert pixels.shape[:2] == (HEIGHT, WIDTH)
    rgb = pixels[..., :3].reshape(-1, 3)
    colours = len(np.unique((rgb * 255).round().astype(np.uint8), axis=0))
    ink = float(np.mean(rgb.min(axis=1) < 0.9))
    assert colours > 100, colours
    assert ink > 0.005, ink


@pytest.mark.skipif(BROWSER is None, reason="no Chromium installed (apt-get install chromium)")
def test_report_and_tour_index_render_in_a_browser(tmp_path):
    index = run_tour(tmp_path / "runs", only=["receptive-field"])
    report = next(index.parent.glob("receptive-field/*/report.html"))
    keep = os.environ.get("TRAINLAB_SCREENSHOTS")
    shots = Path(keep) if keep else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    for page, name in ((report, "report.png"), (index, "index.png")):
        assert_drawn(screenshot(page, shots / name, tmp_path / "profile"))
