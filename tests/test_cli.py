"""CLI: bad input ends with one line on stderr and exit code 2, never a traceback."""

import errno
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import trainlab.experiments
from trainlab import files
from trainlab.cli import main
from trainlab.files import read_jsonl

SRC = str(Path(__file__).resolve().parents[1] / "src")
ENV = {"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"}


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


# -- a run that stops: Ctrl-C, SIGTERM, SIGKILL, a full disk -------------------------------------

SLEEPER = '''
"""A test probe: logs a step, touches a file to say it is running, then sleeps."""
import time
from dataclasses import dataclass
from pathlib import Path

from trainlab.config import BaseConfig

NAME = "stop-probe"
SUMMARY = "test probe for stopping runs"
RUNTIME = "~0 s"
QUICK = {}


@dataclass
class Config(BaseConfig):
    ready: str = ""
    """File touched once the run is under way."""
    sleep: float = 0.0
    """Seconds to sleep after that."""


def run(cfg, out):
    out.log(step=0, loss=1.0)
    out.table("steps", [{"step": 0, "loss": 1.0}])
    if cfg.ready:
        Path(cfg.ready).touch()
    time.sleep(cfg.sleep)
    out.log(step=1, loss=0.5)
    out.summary(headline="loss", loss=0.5)
'''


@pytest.fixture
def stop_probe(tmp_path, monkeypatch):
    """Register the probe experiment in this process; return the folder that holds it."""
    folder = tmp_path / "probe_pkg"
    folder.mkdir()
    (folder / "stop_probe.py").write_text(SLEEPER)
    monkeypatch.setattr(trainlab.experiments, "__path__", [*trainlab.experiments.__path__, str(folder)])
    yield folder
    sys.modules.pop("trainlab.experiments.stop_probe", None)


def _start_probe(probe: Path, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """``trainlab run stop-probe`` in a child process, returned once the recipe is running."""
    ready, out = tmp_path / "ready", tmp_path / "runs"
    code = ("import sys, trainlab.experiments as e; e.__path__.append(sys.argv[1]); "
            "from trainlab.cli import main; main(sys.argv[2:])")
    proc = subprocess.Popen([sys.executable, "-c", code, str(probe), "run", "stop-probe", f"ready={ready}",
                             "sleep=60", "--out", str(out)], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the probe did not start in 60 s"
        time.sleep(0.02)
    (run_dir,) = (out / "stop-probe").iterdir()
    return proc, run_dir


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_ctrl_c_sigterm_and_sighup_end_a_run_interrupted_with_one_line(stop_probe, tmp_path, sig, code):
    proc, run_dir = _start_probe(stop_probe, tmp_path)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code
    assert err.strip().splitlines() == [f"interrupted: {run_dir}"]
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "interrupted" and info["pid"] == proc.pid
    assert (run_dir / "report.html").is_file() and "steps" in (run_dir / "report.md").read_text()
    assert read_jsonl(run_dir / "metrics.jsonl") == [{"step": 0, "loss": 1.0}]


def test_a_run_killed_with_sigkill_is_listed_killed(stop_probe, tmp_path, capsys):
    proc, run_dir = _start_probe(stop_probe, tmp_path)
    code, out, _ = _cli(capsys, "runs", "--out", str(tmp_path / "runs"))
    assert "running" in out.split(str(run_dir))[0].splitlines()[-1]
    proc.kill()
    proc.communicate(timeout=60)
    code, out, err = _cli(capsys, "runs", "--out", str(tmp_path / "runs"))
    (line,) = out.strip().splitlines()
    assert line.split()[:3] == ["stop-probe", json.loads((run_dir / "run.json").read_text())["started"], "killed"]
    assert _listed_paths(line, tmp_path) == [str(run_dir)] and err == ""


def _listed_paths(text: str, root: Path) -> list[str]:
    """The run folders ``trainlab runs`` printed (one a line, before the run's overrides), in order."""
    return [token for line in text.splitlines() for token in line.split() if token.startswith(str(root))]


def _catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler for ``signum`` (Linux: the SigCgt mask in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(int(line.split()[1], 16) for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(mask >> (signum - 1) & 1)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc to see the handler")
def test_ctrl_c_while_the_command_line_starts_is_one_line(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "trainlab", "run", "mnist-binary", "--quick", "--device", "cpu",
                             "--out", str(tmp_path)], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Interrupt once trainlab's own start-up code runs (it catches SIGTERM from its first lines;
    # /proc shows the caught signals), while typer and torch still load. A fixed delay raced:
    # on a loaded machine it could land before the interpreter ran any line of trainlab.
    deadline = time.monotonic() + 30
    while not _catches(proc.pid, signal.SIGTERM):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.002)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted"), err


def test_ctrl_c_while_the_stop_handlers_are_set_is_one_line(monkeypatch, capsys):
    # the window the test above can hit: SIGTERM's handler set (what it waits for), SIGHUP's not yet
    import trainlab.__main__ as entry

    def interrupted_while_setting():
        raise KeyboardInterrupt

    monkeypatch.setattr(entry, "stop_like_ctrl_c", interrupted_while_setting)
    with pytest.raises(SystemExit) as stop:
        entry.main()
    assert stop.value.code == 130 and capsys.readouterr().err.strip() == "interrupted"


def test_a_full_disk_ends_the_run_with_one_line_and_a_readable_folder(stop_probe, tmp_path, capsys, monkeypatch):
    real_write = files._write_all

    def full_after_first_record(fd, data):  # the first metrics line fits, the second does not
        if b'"step": 1' in data:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(fd, data)

    monkeypatch.setattr(files, "_write_all", full_after_first_record)
    code, out, err = _cli(capsys, "run", "stop-probe", "--out", str(tmp_path))
    assert code == 2
    (line,) = err.strip().splitlines()
    assert line.startswith("error: no space left on the disk of") and "free some space" in line
    (run_dir,) = (tmp_path / "stop-probe").iterdir()
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "failed" and "No space left" in info["error"]
    assert (run_dir / "metrics.jsonl").read_text() == '{"step": 0, "loss": 1.0}\n'
    monkeypatch.undo()
    code, out, _ = _cli(capsys, "report", str(run_dir))
    assert code in (0, None) and "steps" in (run_dir / "report.md").read_text()


@pytest.mark.parametrize("make", [
    lambda p: p.symlink_to(p.parent / "missing"),  # looped forever in Run.create
    lambda p: p.write_text("not a folder"),
])
def test_an_unusable_out_is_one_line_before_any_work(tmp_path, capsys, make):
    out = tmp_path / "out"
    make(out)
    done = subprocess.run([sys.executable, "-m", "trainlab", "run", "mnist-binary", "--quick", "--out", str(out)],
                          env=ENV, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: --out {out}") and "choose another --out" in line


def test_runs_skips_a_damaged_run_json_with_one_warning_and_lists_the_rest(stop_probe, tmp_path, capsys):
    assert _cli(capsys, "run", "stop-probe", "--out", str(tmp_path))[0] in (0, None)
    assert _cli(capsys, "run", "stop-probe", "sleep=0.01", "--out", str(tmp_path))[0] in (0, None)
    good, bad = sorted((tmp_path / "stop-probe").iterdir())
    info = json.loads((bad / "run.json").read_text())
    (bad / "run.json").write_text(json.dumps({**info, "started": 20260101}))  # sorting by it raised TypeError
    code, out, err = _cli(capsys, "runs", "--out", str(tmp_path))
    assert code in (0, None)
    assert _listed_paths(out, tmp_path) == [str(good)]
    assert err.strip().splitlines() == [f"warning: skipped {bad}: run.json's 'started' is 20260101, not text"]


# -- what the command line shows: show, run NAME --help, --cfg, runs, compare ----------------------

def _field_lines(text: str) -> dict[str, tuple[list[str], str]]:
    """``show``'s table read back: field -> (its cells after the name, its docstring unwrapped)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["field", "type"]) + 1
    fields: dict[str, tuple[list[str], str]] = {}
    for line in lines[start:]:
        if line.startswith("    "):
            name = list(fields)[-1]
            cells, doc = fields[name]
            fields[name] = (cells, f"{doc} {line.strip()}".strip())
        else:
            name, *cells = line.split()
            fields[name] = (cells, "")
    return fields


def test_show_prints_every_field_in_order_with_type_default_quick_value_and_docstring(capsys, monkeypatch):
    import trainlab
    from trainlab.api.configs import value_text

    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = _cli(capsys, "show", "mnist-binary")
    assert code in (0, None) and err == ""
    shown, expected = _field_lines(out), trainlab.show("mnist-binary")
    assert list(shown) == list(expected["name"])
    quick_cfg, defaults = trainlab.make_config("mnist-binary", quick=True), trainlab.make_config("mnist-binary")
    for name, type_, doc in zip(expected["name"], expected["type"], expected["doc"]):
        default, quick = value_text(getattr(defaults, name)), value_text(getattr(quick_cfg, name))
        # the quick column is blank where the quick profile keeps the default
        assert shown[name] == ([type_, default] + ([quick] if quick != default else []), doc), name
    assert shown["lr"][0][2:] == ["0.01"] and shown["hidden"][0][2:] == []
    docs = [line for line in out.splitlines() if line.startswith("    ")]
    assert max(map(len, docs)) <= 80 and any(len(line) > 70 for line in docs)  # wrapped at the terminal width


@pytest.mark.parametrize("argv", [["show", "mnist-binari"], ["run", "mnist-binari", "--help"]])
def test_an_unknown_name_in_show_or_run_help_is_runs_one_line(capsys, argv):
    expected = _cli(capsys, "run", "mnist-binari")
    code, out, err = _cli(capsys, *argv)
    assert (code, out, err) == expected and expected[0] == 2 and len(err.strip().splitlines()) == 1


def test_run_name_help_is_the_usual_help_then_the_fields_by_python_m_and_the_script(capsys, monkeypatch):
    env = {**ENV, "COLUMNS": "100"}
    monkeypatch.setenv("COLUMNS", "100")
    _, show_out, _ = _cli(capsys, "show", "mnist-binary")
    script = Path(sys.executable).with_name("trainlab")
    entry_points = [[sys.executable, "-m", "trainlab"]] + ([[str(script)]] if script.is_file() else [])
    procs = [subprocess.Popen([*cmd, "run", "mnist-binary", "--help"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for cmd in entry_points]
    for proc in procs:
        help_out, help_err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and help_err == "", help_err
        usual, fields = help_out.split("mnist-binary's config:")
        assert "Usage: trainlab run" in usual and "--cfg" in usual and "--quick" in usual
        assert show_out.startswith("mnist-binary's config:") and "mnist-binary's config:" + fields == show_out
    plain = subprocess.run([sys.executable, "-c", "import sys; from trainlab.cli import main\ntry:\n main(['run', "
                            "'--help'])\nexcept SystemExit:\n print(sorted({'torch', 'pandas'} & set(sys.modules)))"],
                           env=env, capture_output=True, text=True, timeout=60)
    assert "Usage: trainlab run" in plain.stdout and "config:" not in plain.stdout
    assert plain.stdout.strip().splitlines()[-1] == "[]"  # the plain help loads no heavy library


def test_cfg_prints_the_resolved_config_as_yaml_and_runs_nothing(capsys, tmp_path):
    import yaml

    import trainlab
    from trainlab.config import to_dict

    values = tmp_path / "values.yaml"
    values.write_text("epochs: 2\nhidden: 3\n")
    out = tmp_path / "runs"
    code, printed, err = _cli(capsys, "run", "mnist-binary", "--quick", "--config", str(values), "hidden=7",
                              "batch_sizes=[16,128]", "--seed", "4", "--device", "cpu", "--cfg", "--out", str(out))
    assert code in (0, None) and err == ""
    expected = trainlab.make_config("mnist-binary", quick=True, epochs=2, hidden=7, batch_sizes=[16, 128],
                                    seed=4, device="cpu")
    assert yaml.safe_load(printed) == to_dict(expected)
    assert not out.exists()


@pytest.mark.parametrize("swept", ["lr=0.01,0.1", "hidden=range(2,5)", "activation=choice(relu,tanh)"])
def test_a_swept_value_given_to_run_names_the_sweep_command(capsys, tmp_path, swept):
    import shlex

    code, out, err = _cli(capsys, "run", "mnist-binary", "hidden=8", swept, "--quick", "--out", str(tmp_path))
    command = shlex.join(["trainlab", "sweep", "mnist-binary", "hidden=8", swept, "--quick", "--out", str(tmp_path)])
    assert (code, out) == (2, "")
    assert err.strip().splitlines() == [f"error: {swept} is a sweep (several values); run it with {command}"]
    assert not any(tmp_path.iterdir())


def test_a_comma_inside_quotes_or_brackets_is_one_value_for_run(capsys):
    import yaml

    code, out, err = _cli(capsys, "run", "mnist-binary", "data_dir='/no/such,dir'", "batch_sizes=[16,128]", "--cfg")
    assert code in (0, None) and err == ""
    assert yaml.safe_load(out)["data_dir"] == "/no/such,dir" and yaml.safe_load(out)["batch_sizes"] == [16, 128]


@pytest.fixture
def three_runs(stop_probe, tmp_path, capsys):
    """Two stop-probe runs (one with sleep=0.01) and a receptive-field run under tmp_path/runs; the
    second probe's run.json says failed."""
    out = tmp_path / "runs"
    for argv in (["stop-probe"], ["stop-probe", "sleep=0.01"], ["receptive-field", "--quick"]):
        assert _cli(capsys, "run", *argv, "--out", str(out))[0] in (0, None)
    # by config, not by folder name: two runs in the same second sort by their config hashes
    plain, slept = sorted((out / "stop-probe").iterdir(),
                          key=lambda folder: "sleep: 0.01" in (folder / "config.yaml").read_text())
    info = json.loads((slept / "run.json").read_text())
    (slept / "run.json").write_text(json.dumps({**info, "status": "failed"}))
    (other,) = (out / "receptive-field").iterdir()
    return out, plain, slept, other


def test_runs_lists_the_apis_rows_with_overrides_last_and_filters_them(three_runs, capsys):
    import trainlab

    out, plain, slept, other = three_runs
    code, printed, err = _cli(capsys, "runs", "--out", str(out))
    assert code in (0, None) and err == ""
    table = trainlab.list_runs(out)
    lines = printed.strip().splitlines()
    assert len(lines) == len(table) == 3
    for line, row in zip(lines, table.to_dict("records")):  # newest first, as the API
        info = json.loads((Path(row["path"]) / "run.json").read_text())
        assert line.split()[:3] == [info["experiment"], info["started"], info["status"]]
        assert line.split("  ")[-1].strip() == row["overrides"] or row["overrides"] == ""
        assert _listed_paths(line, out) == [row["path"]]
    assert table.set_index("path").loc[str(slept), "overrides"] == "sleep=0.01"
    assert [l.split()[-1] for l in lines if str(slept) in l] == ["sleep=0.01"]

    def listed(*flags: str) -> set[str]:
        code, printed, _ = _cli(capsys, "runs", "--out", str(out), *flags)
        assert code in (0, None)
        return set(_listed_paths(printed, out))

    assert listed("--name", "stop-probe") == {str(p) for p in (out / "stop-probe").iterdir()}
    assert listed("--status", "failed") == {str(slept)}
    assert listed("--name", "receptive-field", "--status", "done") == {str(other)}
    assert _cli(capsys, "runs", "--out", str(out), "--name", "nope")[1].strip() == f"no runs of nope under {out}"


def test_runs_refuses_an_unknown_status_naming_the_choices(capsys, tmp_path):
    code, out, err = _cli(capsys, "runs", "--out", str(tmp_path), "--status", "finished")
    assert (code, out) == (2, "")
    assert err.strip().splitlines() == [
        "error: status='finished' is not one of running, done, diverged, failed, interrupted, pruned, killed"]


def test_compare_prints_the_differing_config_values_of_both_runs_and_their_summaries(three_runs, capsys):
    import yaml

    from trainlab.api.configs import value_text

    out, plain, slept, _ = three_runs
    code, printed, err = _cli(capsys, "compare", str(plain), str(slept))
    assert code in (0, None) and err == ""
    header, *rows = [line.split() for line in printed.strip().splitlines()]
    assert header == [plain.name, slept.name]
    configs = [yaml.safe_load((p / "config.yaml").read_text()) for p in (plain, slept)]
    differing = [k for k in configs[0] if configs[0][k] != configs[1][k]]
    assert differing == ["sleep"]
    assert [r for r in rows if r[0] == "config"] == [["config", "sleep", *(value_text(c["sleep"]) for c in configs)]]
    summaries = [json.loads((p / "summary.json").read_text()) for p in (plain, slept)]
    assert [r[1] for r in rows if r[0] == "summary"] == list(summaries[0]) == ["loss"]


@pytest.mark.parametrize("argv, fragment", [
    (lambda runs: [str(runs[1])], "compare needs at least two runs"),
    (lambda runs: [str(runs[1]), str(runs[0])], "is not a run folder (no run.json); trainlab runs"),
])
def test_compare_refuses_one_run_or_a_folder_that_is_none_in_one_line(three_runs, capsys, argv, fragment):
    code, out, err = _cli(capsys, "compare", *argv(three_runs))
    assert (code, out) == (2, "") and len(err.strip().splitlines()) == 1 and fragment in err
