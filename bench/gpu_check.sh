#!/usr/bin/env bash
# The GPU proof of issue 15 in one command (about 8 minutes on one H100/H200, bare, no network):
#
#   bash bench/gpu_check.sh [--out DIR] [--cpu-dry]
#
#   (a) pretraining throughput of the hf backend's defaults beside eager transformers, the seed's
#       0.4B architecture at seq 4096 (bench/bench_pretrain.py --compare)
#   (b) a 200-step loss curve, defaults against eager, same initialisation and data
#       (bench/bench_loss_curve.py)
#   (c) eval wall time and scores: the seed's `lm-eval ... --batch_size 1` against the workflow's
#       eval job, a 1,000-item local task, a 0.4B model (bench/bench_eval.py)
#   (d) Snakemake with profiles/gpu on the embedded default trimmed by bench/gpu_trim.yaml, in a
#       copy of the tree; the result files must record bfloat16 (bench/gpu_check.py pipeline)
# Each part runs even when an earlier one failed. Prints one table; writes DIR/{pretrain,
# loss_curve,eval,pipeline}.json, DIR/table.md, DIR/env.json (GPU, driver, versions) and
# DIR/log.txt (every part's output). Exit status 1 when a part failed.
#
# --out DIR   default bench/out/gpu_check (gitignored); on the device machine: --out $OUT
# --cpu-dry   the same code at tiny sizes on the CPU (CI; a few minutes on 2 cores)
#
# Packages: the GPU image's own Python (torch, triton...) plus the wheels in .whl/ (made here by
# bench/fetch_wheels.sh: transformers 5.23, lm-eval, snakemake, datatrove, trl, liger-kernel...),
# installed into /tmp/site when .whl/ holds any. Where the project's .venv exists: that one.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=bench/out/gpu_check
DRY=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --cpu-dry) DRY=(--cpu-dry); shift ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (--out DIR, --cpu-dry)" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/{pretrain,loss_curve,eval,pipeline,env}.json "$OUT"/table.md "$OUT"/log.txt

if [ -z "${PY:-}" ] && [ -x .venv/bin/python ]; then
  PY=$PWD/.venv/bin/python  # the project's own set-up (make venv): everything is there
else
  PY=${PY:-$(command -v python3)}
  if compgen -G ".whl/*.whl" >/dev/null; then
    echo "[gpu_check] installing $(ls .whl/*.whl | wc -l) wheels from .whl/ into /tmp/site"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl || { echo "gpu_check.sh: the wheels did not install" >&2; exit 1; }
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    export PATH=/tmp/site/bin:$PATH
  fi
fi
export PYTHONPATH=$PWD/workflow/scripts${PYTHONPATH:+:$PYTHONPATH}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONUNBUFFERED=1

# the parts' time limits (s), guards against a hang: on the GPU 540 s together, so that the
# whole command (with the wheels' install) stays under the device's 10-minute limit
if [ ${#DRY[@]} -gt 0 ]; then T_A=240 T_B=240 T_C=240 T_D=400; else T_A=140 T_B=110 T_C=170 T_D=120; fi
part() { "$PY" bench/gpu_check.py part --out "$OUT" --timeout "$2" "$1" -- "${@:3}"; }
part pretrain "$T_A" "$PY" bench/bench_pretrain.py --compare "${DRY[@]}" --json "$OUT/pretrain.json"
part loss_curve "$T_B" "$PY" bench/bench_loss_curve.py "${DRY[@]}" --json "$OUT/loss_curve.json"
# on the GPU without the third run (the workflow with reproduce_seed_command, as slow as the
# seed's command): its settings are the seed command's; --cpu-dry runs it
if [ ${#DRY[@]} -gt 0 ]; then EVAL_ARGS=(--cpu-dry); else EVAL_ARGS=(--no-switch --threads 8); fi
part eval "$T_C" "$PY" bench/bench_eval.py "${EVAL_ARGS[@]}" --json "$OUT/eval.json"
part pipeline "$T_D" "$PY" bench/gpu_check.py pipeline "${DRY[@]}" --timeout $((T_D - 10)) \
  --json "$OUT/pipeline.json"
"$PY" bench/gpu_check.py env --out "$OUT" >/dev/null
echo
"$PY" bench/gpu_check.py table --out "$OUT"
status=$?
echo
echo "[gpu_check] results in $OUT: table.md, env.json, {pretrain,loss_curve,eval,pipeline}.json, log.txt"
exit $status
