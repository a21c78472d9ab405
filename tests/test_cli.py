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


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--seed", "1", "seed=2"], "--seed 1 and seed=2 disagree"),
        (["--device", "cpu", "device=cuda"], "--device cpu and device=cuda disagree"),
        (["--seed", "100000000000000000000000"], "seed must be in 0..4294967295"),
    ],
)
def test_conflicting_or_impossible_flags_are_refused(capsys, tmp_path, argv, fragment):
    code, _, err = _cli(capsys, "run", "mnist-binary", "--quick", *argv, "--out", str(tmp_path))
    assert code == 2 and err.startswith("error: ") and fragment in err
    assert len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())  # refused before a run folder was made


def test_with_flags_keeps_an_agreeing_flag_once():
    from trainlab.cli import with_flags

    assert with_flags(["seed=3", "epochs=1"], seed=3, device=None) == ["seed=3", "epochs=1"]
    assert with_flags(["epochs=1"], seed=3, device="cpu") == ["epochs=1", "seed=3", "device=cpu"]


@pytest.mark.parametrize("text", ["a: [1, 2\n", "a: &x [*x]\n", "seed: !!python/name:os.system ''\n"])
def test_hostile_config_file_one_line_exit_2(capsys, tmp_path, text):
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    code, _, err = _cli(capsys, "run", "mnist-binary", "--quick", "--config", str(path), "--out", str(tmp_path))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "not valid YAML" in err


def test_oserror_and_yaml_error_reach_the_net_as_one_line(capsys, monkeypatch, tmp_path):
    import yaml

    from trainlab import cli

    for exc in (PermissionError(13, "Permission denied", str(tmp_path / "x")), yaml.YAMLError("bad\nyaml")):
        def boom(*args, exc=exc, **kwargs):
            raise exc

        monkeypatch.setattr(cli, "app", boom)
        code, _, err = _cli(capsys, "list")
        assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: ")


def test_model_too_big_for_the_machine_is_one_line_exit_2(capsys, tmp_path):
    code, _, err = _cli(capsys, "run", "mnist-binary", "--quick", "hidden=1000000000", "--out", str(tmp_path))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "MLP with 67,000,000,002 parameters" in err and "choose smaller sizes" in err
