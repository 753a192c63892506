#!/usr/bin/env bash
# Lays out .device/ for a run on a GPU machine that has PyTorch (CUDA) but no .NET SDK: a .NET
# runtime, the CUDA tests and the benchmark harness, published without the CPU libtorch so that
# TorchSharp loads PyTorch's CUDA libtorch from LD_LIBRARY_PATH. Then run bench/run-on-gpu.sh there.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .device
[ -f .device/dotnet.tar.xz ] || (cd "$(dirname "$(readlink -f "$(command -v dotnet)")")" && tar -cf - dotnet host shared/Microsoft.NETCore.App | xz -T0 -6 > "$OLDPWD/.device/dotnet.tar.xz")
for project in tests/LoraLego.Cuda.Tests bench/LoraLego.Bench; do
  out=.device/$(basename "$project")
  rm -rf "$out"
  dotnet publish "$project" -c Release -r linux-x64 --self-contained false -o "$out" --nologo -v:q
  # Code-coverage engines and resource satellites are not needed to run.
  rm -rf "$out"/{CodeCoverage,x86,x64,arm64,alpine,ubuntu,macos,cs,de,es,fr,it,ja,ko,pl,pt-BR,ru,tr,zh-Hans,zh-Hant}
  # Only the CPU libtorch goes; TorchSharp and its LibTorchSharp glue stay.
  find "$out" \( -name 'libtorch*.so*' -o -name 'libc10*.so*' -o -name 'libgomp*' -o -name 'libshm.so' \
    -o -name 'libaoti_custom_ops.so' -o -name 'libbackend_with_compiler.so' -o -name 'libjitbackend_test.so' -o -name 'libnnapi_backend.so' \) -delete
done
du -sh .device/*
