"""CLI: bad input ends with one line on stderr and exit code 2, never a traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

from trainlab.cli import main

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _cli(capsys, *argv):
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["run", "mnist-binari"], "did you mean mnist-binary"),
        (["run", "mnist-binary", "hiden=3"], "did you mean hidden"),
        (["run", "mnist-binary", "batch_sizes=[0]"], "batch_sizes must be > 0"),
        (["run", "mnist-binary", "lr=-0.1"], "lr must be > 0"),
        (["run", "mnist-binary", "epochs=two"], "epochs"),
        (["run", "mnist-binary", "activation=swish"], "activation='swish' is not one of"),
        (["run", "mnist-binary", "--quick", "--config", "/no/such.yaml"], "does not exist"),
        (["run", "mnist-binary", "dataset=mnist", "data_dir=/no/such/dir"], "/no/such/dir"),
        (["report", "/no/such/run"], "not a run folder"),
        (["data", "info", "cifar-100"], "cifar-100"),
    ],
)
def test_bad_input_one_line_exit_2(capsys, tmp_path, argv, fragment):
    code, out, err = _cli(capsys, *argv, *(["--out", str(tmp_path)] if argv[0] == "run" else []))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and fragment in lines[0]
    assert "Traceback" not in err


def test_usage_error_exits_2(capsys):
    code, _, err = _cli(capsys, "run")
    assert code == 2 and "Traceback" not in err


def test_list_names_every_experiment(capsys):
    code, out, _ = _cli(capsys, "list")
    assert code in (0, None)
    assert "mnist-binary" in out


def test_run_prints_run_folder_last_and_runs_lists_it(tmp_path):
    env = {"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-c", "from trainlab.cli import main; main()"]
    done = subprocess.run([*cmd, "run", "mnist-binary", "--quick", "--seed", "3", "--device", "cpu",
                           "--out", str(tmp_path)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    run_dir = Path(done.stdout.strip().splitlines()[-1])
    assert run_dir.parent == tmp_path / "mnist-binary"
    assert (run_dir / "report.html").is_file()
    assert "seed: 3" in (run_dir / "config.yaml").read_text()
    listed = subprocess.run([*cmd, "runs", "--out", str(tmp_path)], capture_output=True, text=True, env=env)
    assert "mnist-binary" in listed.stdout and "done" in listed.stdout and "test_acc=" in listed.stdout
    again = subprocess.run([*cmd, "report", str(run_dir)], capture_output=True, text=True, env=env)
    assert again.returncode == 0 and again.stdout.strip().endswith("report.html")
