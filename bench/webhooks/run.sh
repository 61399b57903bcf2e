#!/usr/bin/env bash
# Webhook deliveries/s and event -> delivery latency on loopback: ./bench/webhooks/run.sh [deliveries=5000]
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet run -c Release --project bench/webhooks/LLMTune.Bench.Webhooks.csproj -- "$@"
