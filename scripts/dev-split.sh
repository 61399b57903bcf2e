#!/usr/bin/env bash
# Split mode on one machine: gateway, inference and finetune each as its own `llmtune serve` process, each on its
# own embedded LiteDB file, over a private RabbitMQ node. Prints the URLs and an API key; Ctrl+C stops everything.
# Restart a service you killed with the same `serve` line (see `ps`); it finds its store file and carries on.
#
#   scripts/dev-split.sh                # state under ./data/split (kept between runs, except the broker)
#   LLMTUNE_SPLIT_DIR=/tmp/x LLMTUNE_SPLIT_PORT=9080 scripts/dev-split.sh
#
# Services own their data: no process opens another's file. Fine-tune and inference share the artifact folder, as
# they share a bucket in production (trained models travel as files, their announcements as events).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DIR="$(realpath -m "${LLMTUNE_SPLIT_DIR:-./data/split}")"
BASE_PORT="${LLMTUNE_SPLIT_PORT:-8080}"
WORK_DIR="$DIR/run"
RABBIT_NODE_NAME="llmtune-split-$$"
SECRET_FILE="$DIR/internal-secret"
KEY_FILE="$DIR/initial-api-key"
PIDS=()

log() { printf '[dev-split] %s\n' "$*" >&2; }

# shellcheck source=scripts/rabbitmq-node.sh
source scripts/rabbitmq-node.sh

stop_all() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    stop_rabbitmq
    rm -rf "$WORK_DIR"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

mkdir -p "$DIR/logs" "$DIR/artifacts"
rm -rf "$WORK_DIR" && mkdir -p "$WORK_DIR"
[[ -s "$SECRET_FILE" ]] || (umask 077 && head -c 32 /dev/urandom | base64 | tr -d '=+/\n' >"$SECRET_FILE")
SECRET="$(cat "$SECRET_FILE")"

log "building the host"
dotnet build host/LLMTune.Host -v q -nologo -o "$DIR/bin" >"$DIR/logs/build.log" 2>&1 || { tail -20 "$DIR/logs/build.log" >&2; exit 1; }
LLMTUNE=(dotnet "$DIR/bin/llmtune.dll")

start_rabbitmq
wait_for_rabbitmq
RABBIT_URL="amqp://guest:guest@127.0.0.1:$RABBIT_PORT/"

GATEWAY_URL="http://127.0.0.1:$BASE_PORT"
INFERENCE_URL="http://127.0.0.1:$((BASE_PORT + 1))"
FINETUNE_URL="http://127.0.0.1:$((BASE_PORT + 2))"
common=(
    "--Bus:Transport=RabbitMq" "--ConnectionStrings:RabbitMq=$RABBIT_URL"
    "--Storage:Provider=LiteDb" "--Internal:Secret=$SECRET"
    "--Artifacts:LocalPath=$DIR/artifacts"
)

if [[ ! -s "$KEY_FILE" ]]; then
    log "creating a workspace and its API key in the gateway's store"
    "${LLMTUNE[@]}" admin workspaces create --name dev "${common[@]}" "--Storage:LiteDbPath=$DIR/gateway.db" \
        | tee "$DIR/logs/admin.log" | grep -Eo 'sk_[A-Za-z0-9_]+' | head -1 >"$KEY_FILE"
fi

serve() { # name url extra-args...
    local name="$1" url="$2"
    shift 2
    "${LLMTUNE[@]}" serve --target "$name" --urls "$url" "${common[@]}" "--Storage:LiteDbPath=$DIR/$name.db" "$@" \
        >"$DIR/logs/$name.log" 2>&1 &
    PIDS+=($!)
}

serve inference "$INFERENCE_URL"
serve finetune "$FINETUNE_URL" "--Finetune:WorkPath=$DIR/finetune-work"
serve gateway "$GATEWAY_URL" \
    "--ReverseProxy:Clusters:inference:Destinations:inference-1:Address=$INFERENCE_URL/" \
    "--ReverseProxy:Clusters:finetune:Destinations:finetune-1:Address=$FINETUNE_URL/"

for url in "$GATEWAY_URL" "$INFERENCE_URL" "$FINETUNE_URL"; do
    for _ in $(seq 1 600); do
        curl -fsS "$url/healthz" >/dev/null 2>&1 && break
        sleep 0.1
    done
done

cat <<INFO
LLMTune split mode (each process: its own store file under $DIR, logs in $DIR/logs)
  gateway    $GATEWAY_URL   <- use this one
  inference  $INFERENCE_URL
  finetune   $FINETUNE_URL
  rabbitmq   $RABBIT_URL  (private node, pid group $RABBIT_PGID)
  api key    $(cat "$KEY_FILE")
Try: curl -s $GATEWAY_URL/v1/models -H "Authorization: Bearer \$(cat $KEY_FILE)"
Ctrl+C stops everything.
INFO

# A service that exits (or is killed to try a failure) leaves the others running, as in a real deployment.
for _ in "${PIDS[@]}"; do
    wait -n "${PIDS[@]}" || true
    log "a service exited (see $DIR/logs); the others keep running"
done
