"""new_figure follows matplotlib's (nrows, ncols) order and needs neither pyplot nor a backend choice."""

import subprocess
import sys

import numpy as np

from trainlab.report.figures import mean_std_lines, new_figure


def test_rows_then_columns_like_matplotlib():
    fig, axes = new_figure(2, 3, size=(2.0, 1.0))
    assert axes.shape == (2, 3)
    assert tuple(fig.get_size_inches()) == (6.0, 2.0)


def test_drawing_and_saving_a_report_figure_never_imports_pyplot(tmp_path):
    code = (
        "import sys, matplotlib\n"
        "import trainlab.runs, trainlab.report.html, trainlab.report.figures as f\n"
        "fig, ax = f.new_figure(); ax[0, 0].plot([1, 2]); fig.savefig(sys.argv[1])\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    out = tmp_path / "f.png"
    subprocess.run([sys.executable, "-c", code, str(out)], check=True)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mean_std_lines_draws_means_and_clipped_bars():
    fig, axes = new_figure()
    ax = axes[0, 0]
    mean_std_lines(ax, {"a": [[0.9, 1.0, 1.0], [0.0, 0.5, 1.0]]}, [100, 1000], log=True, clip=(0.0, 1.0))
    line = ax.lines[0]
    np.testing.assert_allclose(line.get_ydata(), [29 / 30, 0.5])
    assert ax.get_xscale() == "log"
    (bars,) = ax.collections  # one LineCollection of error bars
    (low, high), (low2, high2) = [seg[:, 1] for seg in bars.get_segments()]
    assert high == 1.0 and high2 == 1.0 and low2 == 0.0  # 0.5 +- 0.5 stays in [0, 1]; 0.967 + 0.058 is cut at 1
