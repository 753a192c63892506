#!/usr/bin/env bash
# Runs the CUDA tests and the benchmarks on the GPU machine (after bench/prepare-gpu-run.sh).
# usage: bench/run-on-gpu.sh gpu|cpu|lego|mole|peft|peft-cuda|peft-cpu   (phases, each well inside a 10-minute call; lego and mole re-time one
#        benchmark alone; peft times every method beside PEFT's add_weighted_adapter on CUDA and the CPU, bench/peft-side-by-side/compare.py,
#        without the CUDA tests; peft-cuda and peft-cpu do one device each, so that every method fits in its call's deadline;
#        METHODS=Lego,Cat,... limits a peft phase to those methods, so that one device's methods can be split over two calls;
#        TESTS=1 runs the CUDA tests first in a peft phase, leaving the comparison the rest of the call)
# Results go to $OUT (or ./gpu-results): the CUDA test log and markdown tables for docs/benchmarks.md.
set -uo pipefail
cd "$(dirname "$0")/.."
phase=${1:-gpu}
out=${OUT:-gpu-results}
mkdir -p "$out" /tmp/dotnet /tmp/bench-data
tar -xJf .device/dotnet.tar.xz -C /tmp/dotnet
export DOTNET_ROOT=/tmp/dotnet PATH=/tmp/dotnet:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
export LD_LIBRARY_PATH=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__)+"/lib")')
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; echo "cores: $(nproc)"; python3 -c 'import torch;print("torch", torch.__version__, "cuda", torch.version.cuda)'; } > "$out/machine-$phase.txt" 2>&1
bench() { timeout "$1" dotnet .device/LoraLego.Bench/loralego-bench.dll "${@:2}" --data /tmp/bench-data; }
if [[ "$phase" == peft* ]]; then
  devices=${phase#peft-}; [ "$devices" = peft ] && devices=cuda,cpu
  deadline=480
  if [ "${TESTS:-0}" = 1 ]; then
    started=$SECONDS
    timeout 150 dotnet .device/LoraLego.Cuda.Tests/LoraLego.Cuda.Tests.dll > "$out/cuda-tests-$phase.log" 2>&1; echo "cuda tests exit $?" >> "$out/cuda-tests-$phase.log"
    tail -n 3 "$out/cuda-tests-$phase.log"
    deadline=$((deadline - (SECONDS - started)))
  fi
  # The script stops starting work at its deadline and prints the table of what it measured.
  timeout $((deadline + 60)) python3 bench/peft-side-by-side/compare.py --data /tmp/bench-data --bench .device/LoraLego.Bench/loralego-bench.dll --deadline $deadline \
    --svd-layers-cuda 2 --devices "$devices" --our-timeout 90 ${METHODS:+--methods "$METHODS"} > "$out/$phase${METHODS:+-part}-compare.md" 2> "$out/$phase${METHODS:+-part}-compare.log"
  echo "compare.py exit $?" >> "$out/$phase${METHODS:+-part}-compare.log"
  tail -n 40 "$out/$phase${METHODS:+-part}-compare.md"; tail -n 5 "$out/$phase${METHODS:+-part}-compare.log"
  exit 0
fi
timeout 150 dotnet .device/LoraLego.Cuda.Tests/LoraLego.Cuda.Tests.dll > "$out/cuda-tests-$phase.log" 2>&1; echo "cuda tests exit $?" >> "$out/cuda-tests-$phase.log"
if [ "$phase" = gpu ]; then
  bench 180 all --device Cuda --methods Lego,Cat,Linear,Svd,Ties > "$out/merge-cuda.md" 2>&1
  bench 100 forward --device Cuda > "$out/forward-cuda.md" 2>&1
  bench 100 mole --device Cuda > "$out/mole-cuda.md" 2>&1
elif [ "$phase" = mole ]; then
  bench 200 mole --device Cuda > "$out/mole-cuda.md" 2>&1
  bench 200 mole --device Cpu > "$out/mole-cpu.md" 2>&1
elif [ "$phase" = lego ]; then
  bench 200 all --device Cuda --methods Lego,Linear > "$out/lego-cuda.md" 2>&1
  bench 200 all --device Cpu --methods Lego,Linear --no-svd-module > "$out/lego-cpu.md" 2>&1
else
  bench 240 all --device Cpu --methods Lego,Cat,Linear,Svd,Ties > "$out/merge-cpu.md" 2>&1
  bench 120 forward --device Cpu > "$out/forward-cpu.md" 2>&1
  bench 120 mole --device Cpu > "$out/mole-cpu.md" 2>&1
fi
tail -n 12 "$out"/*.md "$out"/*.log 2>/dev/null
