#!/usr/bin/env bash
# Gateway bench (about a minute and a half): ./bench/gateway/run.sh [--seconds 5] [--warmup 2] [--tool auto|wrk|dotnet] [--no-split]
# Installs Debian's wrk when it is missing and we are root; without it the bench falls back to a .NET load loop.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v wrk >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null 2>&1 \
        || { DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null 2>&1; } \
        || echo "wrk could not be installed; using the .NET load loop" >&2
fi
dotnet build -c Release bench/gateway/LLMTune.Bench.Gateway.csproj -v q -nologo -clp:NoSummary\;ErrorsOnly
dotnet bench/gateway/bin/Release/net10.0/LLMTune.Bench.Gateway.dll "$@"
