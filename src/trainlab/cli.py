"""The ``trainlab`` command line (Typer). The CLI prints; the library returns values."""

from __future__ import annotations

import functools
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, List, Optional, TypeVar

import typer
import yaml
from typer.core import TyperCommand

from trainlab.errors import TrainlabError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Classic deep-learning studies as fast, reproducible experiments with reports.",
)
data_app = typer.Typer(no_args_is_help=True, help="Inspect or fetch datasets.")
app.add_typer(data_app, name="data")

OUT_HELP = "Folder that holds run folders."
LOG_HELP = "Log live to tensorboard and/or mlflow (repeat, or a comma list); see trainlab export."

Command = TypeVar("Command", bound=Callable[..., Any])


def stoppable(command: Command) -> Command:
    """Ctrl-C, SIGTERM or SIGHUP during ``command``: one line, ``interrupted: FOLDER`` once a folder
    exists, and the shell's exit code for the signal (130, 143, 129). Inside the command because Typer
    turns a KeyboardInterrupt that reaches it into a silent exit 130."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from trainlab.processes import interrupted

        try:
            return command(*args, **kwargs)
        except KeyboardInterrupt as exc:
            stop = interrupted(exc)
            typer.echo(f"interrupted: {stop.folder}" if stop.folder else "interrupted", err=True)
            raise typer.Exit(stop.exit_code) from None

    return wrapper  # type: ignore[return-value]


@app.command("list")
def list_cmd() -> None:
    """List the experiments by study, with the question each answers and its expected runtime."""
    from trainlab.experiments.registry import all_experiments, by_study

    exps = all_experiments()
    width = max((len(n) for n in exps), default=4)
    qwidth = max((len(e.question) for e in exps.values()), default=2)
    for study, members in by_study(exps).items():
        typer.echo(study)
        for exp in members:
            typer.echo(f"  {exp.name:<{width}}  {exp.question:<{qwidth}}  {exp.runtime:>8}  {exp.summary}")


@app.command("show")
def show_cmd(name: str = typer.Argument(..., help="Experiment name (see trainlab list).")) -> None:
    """Every config field of an experiment: type, default, quick value and what it does."""
    from trainlab.cli_tables import experiment_fields

    typer.echo(experiment_fields(name))


class RunCommand(TyperCommand):
    """``run``'s usual help, then the experiment's config fields when ``--help`` comes with a NAME.

    Click answers ``--help`` before it reads the arguments, so the NAME is picked out of the
    raw arguments with the command's own parser; ``trainlab run --help`` stays the plain help
    and loads nothing heavy. The fields are made before any help is printed, so an unknown
    NAME is the one line ``trainlab run NAME`` gives, not a help text and then an error.
    """

    FIELDS = "trainlab.fields"
    """The ``ctx.meta`` key that carries the fields' text from :meth:`parse_args` to :meth:`format_help`."""

    def parse_args(self, ctx: typer.Context, args: List[str]) -> List[str]:
        if not ctx.resilient_parsing and any(arg in ctx.help_option_names for arg in args):
            try:
                name = self.make_parser(ctx).parse_args(args=list(args))[0].get("name")
            except typer.TyperException:  # a malformed line: the plain help, as before
                name = None
            if name:
                from trainlab.cli_tables import experiment_fields

                ctx.meta[self.FIELDS] = experiment_fields(name)
        return super().parse_args(ctx, args)

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:
        # Typer's rich help prints itself; the formatter's text is echoed after it.
        super().format_help(ctx, formatter)
        if self.FIELDS in ctx.meta:
            formatter.write(f"\n{ctx.meta[self.FIELDS]}\n")


@app.command(cls=RunCommand, context_settings={"allow_extra_args": False})
@stoppable
def run(
    name: Optional[str] = typer.Argument(
        None, help="Experiment name (trainlab list; trainlab run NAME --help: its fields); optional with --resume."),
    overrides: Optional[List[str]] = typer.Argument(
        None, help="key=value config overrides (key=a,b is a sweep: trainlab sweep)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of config values."),
    quick: bool = typer.Option(False, "--quick", help="Use the experiment's small quick profile."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:N or mps."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for every random source."),
    out: Path = typer.Option(Path("runs"), "--out", help=OUT_HELP),
    print_config: bool = typer.Option(False, "--cfg", help="Print the resolved config as YAML and exit; nothing runs."),
    log: Optional[List[str]] = typer.Option(None, "--log", help=LOG_HELP),
    resume: Optional[Path] = typer.Option(
        None, "--resume", help="Continue this stopped run folder from its last snapshot, with its recorded config."),
) -> None:
    """Run one experiment (or continue a stopped one); the last line printed is the run folder."""
    from trainlab.config import to_yaml
    from trainlab.execute import build_config, resume_config, run_experiment
    from trainlab.experiments.registry import get_experiment

    items = with_flags(list(overrides or []), device=device, seed=seed)
    if resume is not None:
        if name is not None and "=" in name:  # `run --resume DIR key=value`: no NAME was given
            name, items = None, [name, *items]
        if quick:
            raise TrainlabError("--resume continues the run with its recorded config; drop --quick")
        exp, cfg = resume_config(resume, items, yaml_file=config)
        if name is not None and name != exp.name:
            raise TrainlabError(f"{resume} is a run of {exp.name}, not {name}")
    elif name is None:
        raise TrainlabError("give an experiment: trainlab run NAME (trainlab list shows them), "
                            "or continue a stopped run with trainlab run --resume RUN_DIR")
    else:
        exp = get_experiment(name)
        refuse_sweeps(name, items, quick=quick, config=config, out=out)
        cfg = build_config(exp, items, yaml_file=config, quick=quick)
    if print_config:  # config.yaml as the run folder would hold it
        typer.echo(to_yaml(cfg), nl=False)
        return
    path = run_experiment(exp, cfg, out=out, log=log or (), resume=resume)
    if path is None:  # a data-parallel rank other than 0: rank 0 prints the run folder
        return
    typer.echo(f"report: {path / 'report.html'}")
    typer.echo(str(path))


def refuse_sweeps(name: str, items: List[str], *, quick: bool, config: Optional[Path], out: Path) -> None:
    """Refuse a swept value (Hydra's multirun habit: ``lr=0.01,0.1``, ``range(...)``, ``choice(...)``)
    in one line that gives the ``trainlab sweep`` command to type. The sweep grammar decides, so
    a comma inside quotes or brackets (``note='a,b'``, ``batch_sizes=[16,128]``) is one value."""
    from trainlab.sweeps.grid import sweep_values

    for item in items:
        key, _, value = item.partition("=")
        if sweep_values(key.strip(), value) is not None:
            flags = ["--quick"] * quick + (["--config", str(config)] if config else []) + (
                ["--out", str(out)] if out != Path("runs") else [])
            command = shlex.join(["trainlab", "sweep", name, *items, *flags])
            raise TrainlabError(f"{item} is a sweep (several values); run it with {command}")


def with_flags(items: List[str], **flags: object) -> List[str]:
    """``items`` plus ``key=value`` for every flag given; a key given both ways is refused."""
    from trainlab.config import split_overrides

    given = split_overrides(items)
    for key, value in flags.items():
        if value is None:
            continue
        if key not in given:
            items.append(f"{key}={value}")
        elif given[key].strip() != str(value):
            raise TrainlabError(f"--{key} {value} and {key}={given[key]} disagree; give {key} once")
    return items


GPUS_PER_TRIAL_HELP = ("GPUs each Ray trial asks for (0.5: two trials share one); default 1 where the device can be "
                       "cuda and the cluster has GPUs, else 0.")


@app.command()
@stoppable
def sweep(
    name: str = typer.Argument(..., help="Experiment name (see trainlab list)."),
    overrides: Optional[List[str]] = typer.Argument(None, help="key=a,b,c or key=range(a,b[,step]) or key=value."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of config values."),
    quick: bool = typer.Option(False, "--quick", help="Start every trial from the quick profile."),
    backend: str = typer.Option("local", "--backend", help="local (this process) or ray (Ray Tune)."),
    workers: int = typer.Option(1, "--workers", help="Trials run at once (ray backend)."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address; default starts a local Ray."),
    gpus_per_trial: Optional[float] = typer.Option(None, "--gpus-per-trial", help=GPUS_PER_TRIAL_HELP),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Sweep folder to resume; finished trials are skipped."),
    out: Path = typer.Option(Path("runs"), "--out", help=OUT_HELP),
    log: Optional[List[str]] = typer.Option(None, "--log", help=LOG_HELP),
) -> None:
    """Run the grid of configs given by comma lists; the last line printed is the sweep folder."""
    from trainlab.sweeps import run_sweep

    path = run_sweep(
        name, list(overrides or []), yaml_file=config, quick=quick, backend=backend,
        workers=workers, address=address, gpus_per_trial=gpus_per_trial, resume=resume, out=out, log=log or (),
    )
    typer.echo(f"report: {path / 'report.html'}")
    typer.echo(str(path))


@app.command()
@stoppable
def tune(
    name: str = typer.Argument(..., help="Experiment name (see trainlab list)."),
    space: Optional[List[str]] = typer.Argument(
        None, help="key=loguniform(a,b), uniform(a,b), int(a,b[,log]), choice(a,b,c), or key=value (fixed)."),
    trials: int = typer.Option(20, "--trials", help="Trials to run (with --resume: until the study holds this many)."),
    metric: str = typer.Option("", "--metric", help="Validation number of the summary to optimise, e.g. val_acc."),
    mode: str = typer.Option("max", "--mode", help="max or min."),
    timeout: Optional[str] = typer.Option(None, "--timeout", help="Start no trial after this long: 90s, 10m, 1.5h."),
    pruner: Optional[str] = typer.Option(
        None, "--pruner", help="median (default), hyperband or none; with --backend ray: asha (default) or none."),
    refit: bool = typer.Option(False, "--refit", help="Retrain the best settings on training + validation images "
                                                      "and report that run's test numbers (else the best trial's)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of config values."),
    quick: bool = typer.Option(False, "--quick", help="Start every trial from the quick profile."),
    backend: str = typer.Option("local", "--backend", help="local (this process) or ray (Ray Tune: OptunaSearch + ASHA)."),
    workers: int = typer.Option(1, "--workers", help="Trials run at once (ray backend)."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address; default starts a local Ray."),
    gpus_per_trial: Optional[float] = typer.Option(None, "--gpus-per-trial", help=GPUS_PER_TRIAL_HELP),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Tune folder whose study to continue."),
    out: Path = typer.Option(Path("runs"), "--out", help=OUT_HELP),
) -> None:
    """Search settings with Optuna (TPE, pruning); the last line printed is the tune folder."""
    from trainlab.sweeps.tuning import run_tune

    path = run_tune(name, list(space or []), trials=trials, metric=metric, mode=mode, timeout=timeout,
                    pruner=pruner, refit=refit, yaml_file=config, quick=quick, backend=backend, workers=workers,
                    address=address, gpus_per_trial=gpus_per_trial, resume=resume, out=out)
    typer.echo(f"report: {path / 'report.html'}")
    typer.echo(str(path))


@app.command()
def report(run_dir: Path = typer.Argument(..., help="A run folder.")) -> None:
    """Re-render report.md and report.html of a run folder."""
    from trainlab.report.html import render_report
    from trainlab.runs import RUN_INFO

    if not (run_dir / RUN_INFO).is_file():
        raise TrainlabError(f"{run_dir} is not a run folder (no run.json); trainlab runs lists them")
    md, page = render_report(run_dir)
    typer.echo(str(page))


@app.command()
def runs(
    out: Path = typer.Option(Path("runs"), "--out", help=OUT_HELP),
    name: Optional[str] = typer.Option(None, "--name", help="Only the runs of this experiment."),
    status: Optional[str] = typer.Option(
        # runs.STATUSES, written out: importing trainlab.runs would slow every command's --help
        None, "--status", help="Only the runs with this status: running, done, diverged, failed, interrupted, pruned, killed."),
) -> None:
    """List runs, newest first: experiment, start time, status, headline metric, folder, overrides."""
    from trainlab.api import list_runs
    from trainlab.cli_tables import runs_text

    with warnings.catch_warnings(record=True) as caught:  # a damaged folder: one line each, then the rest
        warnings.simplefilter("always")
        table = list_runs(out, name=name, status=status)
    for warning in caught:
        typer.echo(f"warning: {warning.message}", err=True)
    if table.empty:
        which = " ".join(f"{what} {value}" for what, value in (("of", name), ("with status", status)) if value)
        typer.echo(f"no runs {which + ' ' if which else ''}under {out}")
        return
    typer.echo(runs_text(table))


@app.command()
def compare(
    run_dirs: List[Path] = typer.Argument(..., help="Two or more run folders (trainlab runs lists them)."),
) -> None:
    """The config fields that differ between runs, and their summary numbers, side by side."""
    from trainlab.api import compare as compare_runs
    from trainlab.cli_tables import compare_text

    typer.echo(compare_text(compare_runs(*run_dirs)))


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="A run or sweep folder."),
    to: str = typer.Option(..., "--to", help="tensorboard (event files in RUN_DIR/tb) or mlflow."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder whose mlflow.db receives the MLflow run "
                                       "(default: the runs folder RUN_DIR is in); $MLFLOW_TRACKING_URI wins."),
) -> None:
    """Send a finished run (or a sweep and its trials) to TensorBoard or MLflow; prints where it went."""
    from trainlab.export import export as send

    typer.echo(send(run_dir, to, runs_folder=out))


@app.command()
@stoppable
def tour(out: Path = typer.Option(Path("runs"), "--out", help=OUT_HELP)) -> None:
    """Run every experiment in quick mode on embedded data and write one index.html."""
    from trainlab.tour import run_tour

    def show(row: dict) -> None:
        mark = "ok " if row["status"] == "done" else "FAIL"
        extra = "" if row["status"] == "done" else f"  {row.get('error', '')}"
        typer.echo(f"{mark} {row['name']:<20} {row['seconds']:6.1f} s{extra}")

    index = run_tour(out, on_result=show)
    typer.echo(str(index))
    failed = [l for l in index.parent.joinpath("tour.json").read_text().splitlines() if '"failed"' in l]
    if failed:
        raise typer.Exit(1)


def _data_dir(args: List[str]) -> Optional[str]:
    from trainlab.config import split_overrides

    parsed = split_overrides(args)
    unknown = set(parsed) - {"data_dir"}
    if unknown:
        raise TrainlabError(f"unknown key {sorted(unknown)[0]!r}; only data_dir=DIR is accepted")
    return parsed.get("data_dir")


@data_app.command("info")
def data_info(
    name: str = typer.Argument(..., help="mnist, fashion-mnist, cifar10 or digits."),
    args: Optional[List[str]] = typer.Argument(None, help="data_dir=DIR"),
) -> None:
    """Where a dataset comes from and its counts per split and class."""
    from trainlab.data import describe

    typer.echo(describe(name, _data_dir(args or [])))


@data_app.command("fetch")
@stoppable
def data_fetch(
    name: str = typer.Argument(..., help="mnist, fashion-mnist or cifar10."),
    args: Optional[List[str]] = typer.Argument(None, help="data_dir=DIR to copy from"),
) -> None:
    """Put a dataset's files into the cache (copy, system package or download)."""
    from trainlab.data import fetch

    typer.echo(str(fetch(name, _data_dir(args or []))))


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point: bad input ends with one line on stderr and exit code 2.

    Typer/click handle usage errors themselves (message and exit code 2);
    trainlab's own input errors arrive here as TrainlabError. SIGTERM and SIGHUP stop a
    run as Ctrl-C does (:func:`stoppable`); Ctrl-C never reaches this function, since Typer
    turns a KeyboardInterrupt into a silent exit 130.
    """
    from trainlab.processes import stop_like_ctrl_c

    stop_like_ctrl_c()
    try:
        app(args=argv, prog_name="trainlab")
    except TrainlabError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:  # the net under every file a command touches; causes are fixed where they are
        typer.echo(f"error: {exc.strerror or exc} ({exc.filename})" if exc.filename else f"error: {exc}", err=True)
        sys.exit(2)
    except yaml.YAMLError as exc:
        typer.echo(f"error: not valid YAML: {' '.join(str(exc).split())}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
