#!/usr/bin/env bash
# Inference service benchmark: engine direct vs HTTP JSON vs HTTP streaming, 1 and 8 clients, on the bundled model.
#   ./bench/inference/run.sh [--requests 16] [--max-tokens 64] [--rounds 3] [--threads N] [--long [--embedding 128] [--layers 4]]
# --long: a random model of the same shape that never stops early (192 tokens per request): steady decode, no per-request costs.
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet run -c Release --project bench/inference/LLMTune.Bench.InferenceService.csproj -- "$@"
