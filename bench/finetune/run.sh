#!/usr/bin/env bash
# Fine-tune service benchmark: trainer tokens/s directly vs through the service, and POST -> first training step.
# Arguments: [--model path.gguf] [--epochs 4] [--threads 2] [--rounds 3]
set -euo pipefail
cd "$(dirname "$0")/../.."
ARTIFACTS="${LLMTUNE_BENCH_ARTIFACTS:-$PWD/artifacts/bench}"
dotnet run -c Release --artifacts-path "$ARTIFACTS" --project bench/finetune/LLMTune.Bench.Finetune.csproj -- "$@"
