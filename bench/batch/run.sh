#!/usr/bin/env bash
# bench/batch: 100 prompts as one batch vs the same 100 one after another through POST /v1/models/{id}/inference,
# against the built host (dotnet build host/LLMTune.Host first), in one run. Prints wall times and the ratio.
#   MODEL (default llmtune/tiny), COUNT (100), MAX_TOKENS (32), BATCH_CONCURRENCY (Inference:BatchConcurrency, default 2)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
MODEL="${MODEL:-llmtune/tiny}" COUNT="${COUNT:-100}" MAX_TOKENS="${MAX_TOKENS:-32}" BATCH_CONCURRENCY="${BATCH_CONCURRENCY:-2}"
BIN="host/LLMTune.Host/bin/${CONFIGURATION:-Debug}/net10.0/llmtune"
DATA="$(mktemp -d)"; PORT=$((20000 + RANDOM % 20000)); URL="http://127.0.0.1:$PORT"
"$BIN" serve --urls "$URL" --Storage:LiteDbPath="$DATA/llmtune.db" --Gateway:InitialWorkspace:KeyFile="$DATA/key" \
  --Artifacts:LocalPath="$DATA/artifacts" --Serilog:MinimumLevel:Default=Warning \
  --Inference:BatchConcurrency="$BATCH_CONCURRENCY" >"$DATA/host.log" 2>&1 &
HOST=$!
trap 'kill $HOST 2>/dev/null; wait $HOST 2>/dev/null; rm -rf "$DATA"' EXIT
until [[ -s "$DATA/key" ]] && curl -sf "$URL/readyz" >/dev/null; do sleep 0.2; done
KEY="$(cat "$DATA/key")"; AUTH=(-H "Authorization: Bearer $KEY" -H 'Content-Type: application/json')
prompt() { echo "Write a short sentence about the number $1."; }

start=$(date +%s.%N)
for i in $(seq 1 "$COUNT"); do
  curl -sf "${AUTH[@]}" "$URL/v1/models/$MODEL/inference" -d "{\"prompt\":\"$(prompt "$i")\",\"maxTokens\":$MAX_TOKENS,\"temperature\":0}" >/dev/null
done
sequential=$(echo "$(date +%s.%N) - $start" | bc)

requests=$(for i in $(seq 1 "$COUNT"); do printf '{"id":"r%d","prompt":"%s","maxTokens":%d,"temperature":0}\n' "$i" "$(prompt "$i")" "$MAX_TOKENS"; done | paste -sd, -)
start=$(date +%s.%N)
BATCH=$(curl -sf "${AUTH[@]}" "$URL/v1/batch/inference" -d "{\"modelId\":\"$MODEL\",\"requests\":[$requests]}" | sed -n 's/.*"batchId":"\([^"]*\)".*/\1/p')
until curl -sf "${AUTH[@]}" "$URL/v1/batch/$BATCH" | grep -q '"status":"completed'; do sleep 0.25; done
batched=$(echo "$(date +%s.%N) - $start" | bc)
printf 'model=%s count=%s maxTokens=%s batchConcurrency=%s sequential=%.2fs batch=%.2fs ratio=%.2fx\n' \
  "$MODEL" "$COUNT" "$MAX_TOKENS" "$BATCH_CONCURRENCY" "$sequential" "$batched" "$(echo "$sequential / $batched" | bc -l)"
