#!/bin/bash
# Build skill sets on a GPU machine, all at once (one process a set, sharing the GPU).
#   bash bench/skillsets/run_all.sh OUTDIR [set ...]
# Writes OUTDIR/<set>.tar.gz (the set's folder) and OUTDIR/<set>.log. A smoke run of every code
# path goes first; nothing else runs if it fails.
set -o pipefail
OUTDIR=${1:-/tmp/skillsets-out}; shift
SETS=${*:-disjoint shared2 mixed-rank overlap3}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUTDIR"
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__, torch.cuda.get_device_name(0)); import peft; print("peft", peft.__version__)'
if [ -z "$NO_SMOKE" ]; then
  timeout 180 python3 "$HERE/make_skillset.py" --preset disjoint --smoke --root /tmp/smoke || { echo SMOKE FAILED; exit 1; }
  cat /tmp/smoke/disjoint/peft_scores.txt; ls -la /tmp/smoke/disjoint/adapters/swap
fi
for s in $SETS; do
  timeout "${SET_TIMEOUT:-420}" python3 "$HERE/make_skillset.py" --preset "$s" --root /tmp/skillsets > "/tmp/skillsets-$s.out" 2>&1 &
done
wait
for s in $SETS; do
  echo "=== $s"; tail -n 22 "/tmp/skillsets-$s.out"
  cp "/tmp/skillsets-$s.out" "$OUTDIR/$s.log"
  [ -f "/tmp/skillsets/$s/README.md" ] && tar czf "$OUTDIR/$s.tar.gz" -C /tmp/skillsets "$s"
done
ls -la "$OUTDIR"
