#!/usr/bin/env bash
# Ready for the first GPU: what a first CUDA run would hit, checked in under five minutes.
#
#   bench/gpu_check.sh            (from a checkout; uses .venv/bin/python if there, else python3)
#
# 1. versions and the device: torch, CUDA, cuDNN, GPU name and count;
# 2. every experiment's quick profile on cuda (status of each);
# 3. cifar-cnn --quick with compile=false and compile=true (a refusal in one line counts as refused);
# 4. the same seed twice gives the same tables (cifar-cnn and the conv autoencoder: cuDNN's choices);
# 5. host-device synchronisations per training step, counted by torch.cuda.set_sync_debug_mode("warn"),
#    for cifar-cnn and ddpm-steps;
# 6. bench/cifar_speed.py, short (2 epochs of 10,000 images);
# 7. with two or more GPUs, cifar-cnn --quick under torchrun --nproc_per_node=2.
#
# Ends with one line: RESULT key=value ... (ok=1 when every check passed). Without CUDA it
# prints one line saying so and exits with status 2. Work goes to a temporary folder.
#
# A script, not a trainlab command: it is a maintainer's check of a machine, it measures
# (syncs, speed) as the other benches do, and it drives torchrun and bench/ scripts that are
# not part of the installed package.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"

gpus=$("$PY" -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)' 2>/dev/null)
if [ "${gpus:-0}" = "0" ]; then
  echo "gpu_check: no CUDA device here (torch $("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo 'not importable')); run it on a machine with an NVIDIA GPU" >&2
  exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$(date +%s)

# Steps 1-5 in one process (torch and trainlab are imported once); its last line is key=value pairs.
checks=$(timeout 200 "$PY" - "$work" <<'EOF'
import json, sys, time, warnings
from pathlib import Path

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from trainlab.execute import build_config, run_experiment
from trainlab.experiments.registry import all_experiments, get_experiment
from trainlab.errors import TrainlabError

work = Path(sys.argv[1])
props = torch.cuda.get_device_properties(0)
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
      f"{torch.cuda.device_count()} x {props.name} ({props.total_memory / 2**30:.0f} GiB)", flush=True)
result = {"gpu": props.name.replace(" ", "_"), "gpus": torch.cuda.device_count()}


def run(name, *overrides, out="runs"):
    exp = get_experiment(name)
    return run_experiment(exp, build_config(exp, [*overrides, "device=cuda"], quick=True), out=work / out)


def status(folder):
    return json.loads((folder / "run.json").read_text())["status"]


def tables(folder):
    # Tables without their timing columns (seconds, speeds): what the same seed must repeat.
    import csv, re
    timing = re.compile(r"(time|seconds|_s$|_s_|per_s|speed|throughput)")
    out = {}
    for path in sorted((folder / "tables").glob("*.csv")):
        with open(path, newline="") as fh:
            out[path.stem] = [{k: v for k, v in row.items() if not timing.search(k)} for row in csv.DictReader(fh)]
    return out


# 2. every quick profile
failed = []
for name in sorted(all_experiments()):
    t = time.perf_counter()
    try:
        s = status(run(name, out="quick"))
    except Exception as exc:  # noqa: BLE001 - every failure is reported, the check goes on
        s = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    print(f"  {name:26s} {time.perf_counter() - t:6.1f} s  {s}", flush=True)
    if s != "done":
        failed.append(name)
result["quick_ok"] = f"{len(all_experiments()) - len(failed)}/{len(all_experiments())}"
result["quick_failed"] = ",".join(failed) or "none"

# 3. compile
accs = {}
for flag in ("false", "true"):
    try:
        folder = run("cifar-cnn", f"compile={flag}", out=f"compile-{flag}")
        accs[flag] = (status(folder), json.loads((folder / "summary.json").read_text()))
    except TrainlabError as exc:
        accs[flag] = ("refused", {"error": str(exc)})
    print(f"  cifar-cnn compile={flag}: {accs[flag][0]}", flush=True)
result["compile"] = accs["true"][0]

# 4. the same seed twice
same = []
for name in ("cifar-cnn", "autoencoder"):
    a, b = tables(run(name, out=f"seed-{name}-a")), tables(run(name, out=f"seed-{name}-b"))
    same.append(a == b)
    print(f"  {name} twice with one seed: {'same tables' if a == b else 'DIFFERENT tables'}", flush=True)
result["same_seed"] = "yes" if all(same) else "no"

# 5. syncs per step
steps = [0]
hook = register_optimizer_step_post_hook(lambda *args: steps.__setitem__(0, steps[0] + 1))
for name in ("cifar-cnn", "ddpm-steps"):
    steps[0] = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            run(name, out=f"sync-{name}")
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = sum("synchroniz" in str(w.message) for w in caught)
    print(f"  {name}: {syncs} synchronisations in {steps[0]} optimizer steps", flush=True)
    result[f"syncs_per_step_{name.replace('-', '_')}"] = f"{syncs / max(steps[0], 1):.2f}"
hook.remove()

ok = not failed and result["compile"] in ("done", "refused") and result["same_seed"] == "yes"
print(" ".join(f"{k}={v}" for k, v in {**result, "checks_ok": int(ok)}.items()))
EOF
)
rc=$?
echo "$checks" | sed '$d'
summary=$(echo "$checks" | tail -n 1)
[ $rc -eq 0 ] || summary="checks_ok=0 checks_exit=$rc"

# 6. the CNN bench, short
speed=$(timeout 90 "$PY" bench/cifar_speed.py --epochs 2 --train-size 10000 --test-size 2000 --device cuda 2>&1 | tail -n 1)
echo "  cifar_speed: $speed"
ips=$(echo "$speed" | sed -n 's/.*images_per_s=\([0-9.]*\).*/\1/p')

# 7. two processes
ddp=skipped
if [ "$gpus" -ge 2 ]; then
  if timeout 120 "$PY" -m torch.distributed.run --standalone --nproc_per_node=2 -m trainlab run cifar-cnn --quick \
       --device cuda --out "$work/ddp" > "$work/ddp.log" 2>&1; then ddp=ok; else ddp=failed; tail -n 5 "$work/ddp.log"; fi
fi

ok=1
case "$summary" in *checks_ok=1*) ;; *) ok=0 ;; esac
[ -n "$ips" ] || ok=0
[ "$ddp" != failed ] || ok=0
echo "RESULT ok=$ok $summary cifar_images_per_s=${ips:-none} ddp=$ddp seconds=$(( $(date +%s) - start ))"
[ $ok -eq 1 ]
