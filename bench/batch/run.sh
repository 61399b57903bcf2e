#!/usr/bin/env bash
# Batch vs sequential, one run per model: N prompts as one POST /v1/batch/inference vs the same N one after another
# through POST /v1/models/{id}/inference, plus p50 latency of synchronous requests while a batch runs vs idle.
#   ./bench/batch/run.sh [--count 100] [--max-tokens 32] [--threads 1] [--max-concurrency 8] [--embedding 768] [--layers 6] [--long-only] [--cpu]
# First the memory-bound random model (768 × 6 = 44 M parameters, never stops early), then the bundled llmtune/tiny.
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet run -c Release --project bench/batch/LLMTune.Bench.Batch.csproj -- "$@"
