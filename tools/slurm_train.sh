#!/usr/bin/env bash
# Training on a Slurm cluster with MMEngine's `slurm` launcher, on a GPU or a
# CPU partition (gloo where CUDA is not available:
# densecl_plugin/utils/dist_launch.py). One process per task.
#   bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]
# Environment:
#   GPUS (8)            processes in all (one per GPU on a GPU partition)
#   GPUS_PER_NODE       GPUs per node, one process each; the job asks for
#                       exactly these (--gres=gpu:GPUS_PER_NODE). Defaults to
#                       GPUS, at most 8. 0: a CPU partition, no gres asked
#   TASKS_PER_NODE      processes per node on a CPU partition (default GPUS)
#   CPUS_PER_TASK (5)   CPUs per process
#   SRUN_ARGS ("")      more srun options (several words)
#   BATCH (0)           1: submit a batch job (sbatch --requeue) and return;
#                       its id is printed and written to WORK_DIR/slurm_job_id,
#                       its output goes to WORK_DIR/slurm-<id>.out. A requeued
#                       (preempted, `scontrol requeue`) job resumes from the
#                       newest intact checkpoint by itself
#   SBATCH_ARGS ("")    more sbatch options (several words), with BATCH=1
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: $0 PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]" >&2; exit 2; }
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
GPUS=${GPUS:-8}
if [ -z "${GPUS_PER_NODE:-}" ]; then
  GPUS_PER_NODE=$(( GPUS < 8 ? GPUS : 8 ))
fi
if [ "$GPUS_PER_NODE" -gt 0 ]; then
  RES=(--gres=gpu:"$GPUS_PER_NODE" --ntasks-per-node="$GPUS_PER_NODE")
else
  RES=(--ntasks-per-node="${TASKS_PER_NODE:-$GPUS}")
fi
RES+=(-p "$1" --job-name="$2" --ntasks="$GPUS"
      --cpus-per-task="${CPUS_PER_TASK:-5}")

if [ "${BATCH:-0}" = 1 ]; then
  mkdir -p "$4"
  WRAP="BATCH=0 exec bash $(printf '%q ' "$ROOT/tools/slurm_train.sh" "$@")"
  # shellcheck disable=SC2086  # SBATCH_ARGS: several words on purpose
  JOB=$(sbatch --parsable --requeue --open-mode=append \
        --output="$4/slurm-%j.out" "${RES[@]}" ${SBATCH_ARGS:-} \
        --wrap="$WRAP")
  JOB=${JOB%%;*}
  echo "$JOB" > "$4/slurm_job_id"
  echo "Submitted batch job $JOB ($2): output in $4/slurm-$JOB.out"
  exit 0
fi

# shellcheck disable=SC2086  # SRUN_ARGS: several words on purpose
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
srun "${RES[@]}" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS:-} \
    "${PYTHON:-python}" -u "$ROOT/tools/train.py" "$3" --work-dir="$4" \
    --launcher=slurm "${@:5}"
