#!/usr/bin/env bash
# Gateway overhead benchmark: ./bench/gateway/run.sh [concurrency=8] [seconds=10]
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet run -c Release --project bench/gateway/LLMTune.Bench.Gateway.csproj -- "$@"
