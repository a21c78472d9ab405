"""docs/quickstart.ipynb runs headlessly from a fresh kernel, and what it made is the run folders'."""

import json
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "quickstart.ipynb"


def test_the_committed_notebook_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


@pytest.mark.slow
def test_quickstart_notebook_executes_and_its_runs_are_on_disk(tmp_path, monkeypatch):
    # The kernel is this interpreter (the test extra installs ipykernel into it); its working
    # folder is tmp_path, so the notebook's runs/ lands there.
    from jupyter_client.kernelspec import KernelSpecManager, NATIVE_KERNEL_NAME

    spec = KernelSpecManager().get_kernel_spec(NATIVE_KERNEL_NAME)
    if Path(spec.argv[0]).resolve() != Path(sys.executable).resolve():
        spec_dir = tmp_path / "kernels" / NATIVE_KERNEL_NAME
        spec_dir.mkdir(parents=True)
        (spec_dir / "kernel.json").write_text(json.dumps(
            {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
             "display_name": "Python 3", "language": "python"}))
        monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name=NATIVE_KERNEL_NAME,
                                     resources={"metadata": {"path": str(tmp_path)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError naming the cell if any cell fails
    seconds = time.perf_counter() - start
    assert seconds < 60, f"the quickstart took {seconds:.0f} s; it should stay under a minute"

    outputs = {i: cell.outputs for i, cell in enumerate(nb.cells) if cell.cell_type == "code"}
    assert all(o.get("output_type") != "error" for cell in outputs.values() for o in cell)
    runs = sorted((tmp_path / "runs" / "mnist-binary").iterdir())
    assert len(runs) == 2  # the quick run and the hidden=2 one (the hidden=-1 one never started)
    statuses = [json.loads((p / "run.json").read_text())["status"] for p in runs]
    assert statuses == ["done", "done"]
    sweeps = list((tmp_path / "runs" / "mnist-binary-sweep").iterdir())
    assert len(sweeps) == 1
    trials = (sweeps[0] / "tables" / "trials.csv").read_text().splitlines()
    assert len(trials) == 1 + 6  # header and 3 x 2 trials
    # Figures reached the notebook as images: the run's PNG, the trial plot, the schedules.
    images = [o for cell in outputs.values() for o in cell if "image/png" in o.get("data", {})]
    assert len(images) >= 3
    texts = "".join(o.get("text", "") for cell in outputs.values() for o in cell)
    assert "hidden" in texts and "recomputed" in texts  # the ConfigError line and the model check
