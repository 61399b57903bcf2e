#!/usr/bin/env bash
# Split mode on one machine, in one command: builds the host, starts a private RabbitMQ node (Debian's
# rabbitmq-server, on free loopback ports), then runs `llmtune dev split`, which starts every service (gateway,
# inference, finetune, webhooks, billing, batch) as its own `llmtune serve --target <name>` process on its own
# embedded store file and prints the URLs and an API key. Ctrl+C stops everything, the broker last.
#
#   scripts/dev-split.sh                                       # gateway :8080, services :8081-8085, state in ./data/split
#   LLMTUNE_SPLIT_DIR=/tmp/x LLMTUNE_SPLIT_PORT=9080 scripts/dev-split.sh   # --dir and --port (0: free ports)
#   scripts/dev-split.sh --Outbound:AllowedHosts:0=127.0.0.1   # any --Section:Key=value goes to every service
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DIR="$(realpath -m "${LLMTUNE_SPLIT_DIR:-./data/split}")"
WORK_DIR="$DIR/run" # the broker's node lives here, recreated on every run
RABBIT_NODE_NAME="llmtune-split-$$"
CHILD=""

log() { printf '[dev-split] %s\n' "$*" >&2; }

# shellcheck source=scripts/rabbitmq-node.sh
source scripts/rabbitmq-node.sh

stop_all() {
    if [[ -n "$CHILD" ]]; then
        kill -TERM "$CHILD" 2>/dev/null || true
        wait "$CHILD" 2>/dev/null || true
    fi
    stop_rabbitmq
    rm -rf "$WORK_DIR"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

mkdir -p "$DIR/logs"
rm -rf "$WORK_DIR" && mkdir -p "$WORK_DIR"

log "building the host"
dotnet build host/LLMTune.Host -v q -nologo -o "$DIR/bin" >"$DIR/logs/build.log" 2>&1 || { tail -20 "$DIR/logs/build.log" >&2; exit 1; }

start_rabbitmq
wait_for_rabbitmq

dotnet "$DIR/bin/llmtune.dll" dev split --dir "$DIR" --port "${LLMTUNE_SPLIT_PORT:-8080}" \
    --rabbitmq "amqp://guest:guest@127.0.0.1:$RABBIT_PORT/" "$@" &
CHILD=$!
wait "$CHILD"
