#!/usr/bin/env bash
# The one test command: makes sure RabbitMQ is reachable, builds LLMTune.sln once, runs every test
# project and ends with "N passed, N failed, N skipped". Exits non-zero on a build error or any failure.
#
# RabbitMQ, in this order:
#   1. RABBITMQ_URL if set (amqp://user:pass@host:port/);
#   2. Docker, if `docker info` works: the tests start Testcontainers.RabbitMq themselves;
#   3. a private rabbitmq-server node on free loopback ports in a temp dir, stopped on exit
#      (Debian's package is installed with apt-get when missing and running as root).
#
# Environment:
#   CONFIGURATION            Debug (default) or Release
#   LLMTUNE_ARTIFACTS_PATH   build into this folder (dotnet --artifacts-path) instead of bin/ and obj/
#   LLMTUNE_TEST_MONGO       a MongoDB connection string for the store contract tests (else Docker, else skipped)
#   LLMTUNE_NO_RABBIT=1      do not provide RabbitMQ (the broker tests then skip and say why)
#   LLMTUNE_CHROMIUM         a Chromium binary for the dashboard browser tests (else Debian's chromium, installed
#                            with apt-get when missing and running as root; without one those tests skip)
#   LLMTUNE_TEST_S3          an S3-compatible endpoint for the artifact-store and s3:// dataset tests (with
#                            LLMTUNE_TEST_S3_ACCESS_KEY/_SECRET_KEY); else a private s3rver (tests/s3rver, from npm)
#                            is started on a free loopback port; LLMTUNE_NO_S3=1 skips those tests instead
#   LLMTUNE_NO_NODE_SDK=1    do not install the OpenAI Node SDK (tests/openai-node, from npm); its test then skips
# When Docker is used, LLMTUNE_TEST_DOCKER=1 is exported for the tests.
# Extra arguments go to `dotnet test`, e.g. ./test.sh --filter "FullyQualifiedName~Storage".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

CONFIGURATION="${CONFIGURATION:-Debug}"
WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/llmtune-test.XXXXXX")"
RESULTS_DIR="$WORK_DIR/results"

log() { printf '[test.sh] %s\n' "$*" >&2; }

artifacts_args=()
if [[ -n "${LLMTUNE_ARTIFACTS_PATH:-}" ]]; then
    artifacts_args=(--artifacts-path "$LLMTUNE_ARTIFACTS_PATH")
fi

# ---------------------------------------------------------------- private RabbitMQ node

# shellcheck source=scripts/rabbitmq-node.sh
source scripts/rabbitmq-node.sh

# ---------------------------------------------------------------- private S3-compatible server

S3_PID=""

start_s3() {
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        if [[ "$(id -u)" != 0 ]]; then
            log "node and npm are needed for the S3 test server: install them, set LLMTUNE_TEST_S3, or LLMTUNE_NO_S3=1"
            return 1
        fi
        log "installing nodejs and npm with apt-get"
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm >"$WORK_DIR/apt-node.log" 2>&1; then
            DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$WORK_DIR/apt-node.log" 2>&1 || true
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm >>"$WORK_DIR/apt-node.log" 2>&1 \
                || { tail -20 "$WORK_DIR/apt-node.log" >&2; log "apt-get install nodejs npm failed"; return 1; }
        fi
    fi
    # Under a lock: npm ci empties node_modules first, which would pull the server from under a concurrent run.
    if ! (flock 9 && { [[ -x tests/s3rver/node_modules/.bin/s3rver ]] \
        || { log "installing the S3 test server (npm ci in tests/s3rver)";
             npm ci --prefix tests/s3rver --no-audit --no-fund --loglevel=error >"$WORK_DIR/npm.log" 2>&1; }; }) 9>tests/s3rver/.install.lock; then
        tail -20 "$WORK_DIR/npm.log" >&2 || true
        log "npm ci in tests/s3rver failed"
        return 1
    fi
    S3_PORT="$(free_port)"
    mkdir -p "$WORK_DIR/s3"
    tests/s3rver/node_modules/.bin/s3rver -d "$WORK_DIR/s3" -a 127.0.0.1 -p "$S3_PORT" --silent \
        >"$WORK_DIR/s3rver.log" 2>&1 </dev/null &
    S3_PID=$!
    log "starting a private S3 server (s3rver) on 127.0.0.1:$S3_PORT"
}

wait_for_s3() {
    local deadline=$((SECONDS + 30))
    until port_in_use "$S3_PORT"; do
        if ! kill -0 "$S3_PID" 2>/dev/null || ((SECONDS > deadline)); then
            tail -20 "$WORK_DIR/s3rver.log" >&2 || true
            log "the S3 server did not start"
            return 1
        fi
        sleep 0.1
    done
    export LLMTUNE_TEST_S3="http://127.0.0.1:$S3_PORT"
    log "S3 server is listening"
}

# ---------------------------------------------------------------- the OpenAI Node SDK (OpenAiNodeSdkTests runs it)

install_openai_node() {
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        if [[ "$(id -u)" != 0 ]]; then
            log "node and npm are needed for the OpenAI Node SDK test: install them or set LLMTUNE_NO_NODE_SDK=1"
            return 1
        fi
        log "installing nodejs and npm with apt-get"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm >"$WORK_DIR/apt-node-sdk.log" 2>&1 \
            || { tail -20 "$WORK_DIR/apt-node-sdk.log" >&2; log "apt-get install nodejs npm failed"; return 1; }
    fi
    # Under a lock, like the S3 server: npm ci empties node_modules first.
    if ! (flock 9 && { [[ -f tests/openai-node/node_modules/openai/package.json ]] \
        || { log "installing the OpenAI Node SDK (npm ci in tests/openai-node)";
             npm ci --prefix tests/openai-node --no-audit --no-fund --loglevel=error >"$WORK_DIR/npm-openai.log" 2>&1; }; }) 9>tests/openai-node/.install.lock; then
        tail -20 "$WORK_DIR/npm-openai.log" >&2 || true
        log "npm ci in tests/openai-node failed"
        return 1
    fi
}

cleanup() {
    if [[ -n "$S3_PID" ]]; then
        kill "$S3_PID" 2>/dev/null || true
        wait "$S3_PID" 2>/dev/null || true
    fi
    stop_rabbitmq
    rm -rf "$WORK_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- a browser for the dashboard tests

# The dashboard tests drive Debian's chromium through Playwright (which never downloads a browser here);
# without it they skip and say so.
ensure_chromium() {
    if [[ -n "${LLMTUNE_CHROMIUM:-}" ]] || command -v chromium >/dev/null 2>&1; then
        return 0
    fi
    if [[ "$(id -u)" != 0 ]]; then
        log "chromium is missing and this is not root: the dashboard browser tests will skip (apt-get install chromium)"
        return 0
    fi
    log "installing chromium with apt-get (dashboard browser tests)"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >"$WORK_DIR/apt-chromium.log" 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$WORK_DIR/apt-chromium.log" 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >>"$WORK_DIR/apt-chromium.log" 2>&1 \
            || { tail -5 "$WORK_DIR/apt-chromium.log" >&2; log "apt-get install chromium failed: the dashboard browser tests will skip"; }
    fi
}

# ---------------------------------------------------------------- choose the broker

if [[ -n "${RABBITMQ_URL:-}" ]]; then
    log "RabbitMQ: RABBITMQ_URL from the environment"
elif [[ "${LLMTUNE_NO_RABBIT:-}" == 1 ]]; then
    log "RabbitMQ: none (LLMTUNE_NO_RABBIT=1); broker tests will skip"
elif command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1; then
    log "RabbitMQ: Docker is reachable, the tests start it with Testcontainers"
    export LLMTUNE_TEST_DOCKER=1
else
    start_rabbitmq
fi

if [[ -n "${LLMTUNE_TEST_S3:-}" ]]; then
    log "S3: LLMTUNE_TEST_S3 from the environment"
elif [[ "${LLMTUNE_NO_S3:-}" == 1 ]]; then
    log "S3: none (LLMTUNE_NO_S3=1); S3 tests will skip"
else
    start_s3
fi

ensure_chromium
if [[ "${LLMTUNE_NO_NODE_SDK:-}" == 1 ]]; then
    log "OpenAI Node SDK: not installed (LLMTUNE_NO_NODE_SDK=1); its test will skip"
else
    install_openai_node
fi

# ---------------------------------------------------------------- build once, test

build_start=$SECONDS
if ! dotnet build LLMTune.sln -c "$CONFIGURATION" "${artifacts_args[@]}" --nologo -v q -clp:NoSummary\;ErrorsOnly; then
    log "build failed: no tests ran (counted as one failure)"
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
fi
log "built in $((SECONDS - build_start)) s"

if [[ -n "$RABBIT_PGID" ]]; then
    wait_for_rabbitmq
    export RABBITMQ_URL="amqp://guest:guest@127.0.0.1:$RABBIT_PORT/"
fi
if [[ -n "$S3_PID" ]]; then
    wait_for_s3
fi

test_start=$SECONDS
set +e
# A hung test fails the run after 10 minutes instead of blocking CI.
dotnet test LLMTune.sln --no-build -c "$CONFIGURATION" "${artifacts_args[@]}" --nologo \
    --results-directory "$RESULTS_DIR" --logger trx \
    --blame-hang-timeout 10m --blame-hang-dump-type none "$@"
test_exit=$?
set -e
log "tests ran in $((SECONDS - test_start)) s (dotnet test exit code $test_exit)"

# ---------------------------------------------------------------- summary from the TRX files

passed=0 failed=0 skipped=0 reports=0
while IFS= read -r -d '' trx; do
    counters="$(grep -o '<Counters [^>]*>' "$trx" | head -1)"
    [[ -n "$counters" ]] || continue
    count() { sed -n "s/.* $1=\"\\([0-9]*\\)\".*/\\1/p" <<<"$counters"; }
    passed=$((passed + $(count passed)))
    failed=$((failed + $(count failed) + $(count error) + $(count timeout) + $(count aborted)))
    # xunit reports skipped tests as not executed without counting them as such.
    skipped=$((skipped + $(count total) - $(count executed)))
    reports=$((reports + 1))
done < <(find "$RESULTS_DIR" -name '*.trx' -print0 2>/dev/null)

if ((test_exit != 0 && failed == 0)); then
    # A crashed or hung test host leaves no failed test in the reports; it is still a failure.
    log "dotnet test failed without a failed test in the reports (crashed or aborted test host)"
    failed=1
fi
if ((reports == 0)); then
    log "no test reports were written"
    failed=$((failed > 0 ? failed : 1))
fi

echo "$passed passed, $failed failed, $skipped skipped"
((failed == 0))
