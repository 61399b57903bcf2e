#!/usr/bin/env bash
# Engine benchmarks: builds each in Release and runs it. Arguments go to the inference benchmark
# (--model path.gguf or --random (default: models/llmtune-tiny.gguf when present), --concurrency 1,4,8, --tokens 128, --seconds 4, --rounds 3, --threads N).
set -euo pipefail
cd "$(dirname "$0")/../.."
ARTIFACTS="${LLMTUNE_BENCH_ARTIFACTS:-$PWD/artifacts/bench}"
bench() { dotnet run -c Release --artifacts-path "$ARTIFACTS" --project "$1" -- "${@:2}"; }

if (($# > 0)); then
    bench bench/engine/Inference/LLMTune.Bench.Inference.csproj "$@"
else
    # The bundled model fits in cache, so one sequence is already compute-bound and batching saves little; a 44 M
    # parameter model (176 MB of weights) is memory-bound at one sequence, as real LLMs are, and shows what batching buys.
    bench bench/engine/Inference/LLMTune.Bench.Inference.csproj
    bench bench/engine/Inference/LLMTune.Bench.Inference.csproj --random-embedding 768 --random-layers 6 --tokens 64 --rounds 2
fi
bench bench/engine/Training/LLMTune.Bench.Training.csproj
