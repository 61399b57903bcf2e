# A private RabbitMQ node on free loopback ports, for ./test.sh and scripts/dev-split.sh.
# The caller defines log() and WORK_DIR (the node lives in $WORK_DIR/rabbitmq) and sets RABBIT_NODE_NAME if it likes.
# start_rabbitmq; wait_for_rabbitmq; ... ; stop_rabbitmq.  The node listens on 127.0.0.1:$RABBIT_PORT.

RABBIT_DIR=""
RABBIT_PGID=""
RABBIT_EPMD_PORT=""
RABBIT_AS=()

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
    local port
    for _ in $(seq 1 100); do
        port=$((20000 + RANDOM % 40000))
        if ! port_in_use "$port"; then
            echo "$port"
            return 0
        fi
    done
    log "no free port found"
    return 1
}

install_rabbitmq() {
    if command -v rabbitmq-server >/dev/null 2>&1 || [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]]; then
        return 0
    fi
    if [[ "$(id -u)" != 0 ]]; then
        log "rabbitmq-server is not installed and this is not root: install Debian's rabbitmq-server, set RABBITMQ_URL, or start Docker"
        return 1
    fi
    log "installing rabbitmq-server with apt-get"
    # Keep the package from starting its default node: only the private node below should run.
    local policy=/usr/sbin/policy-rc.d added_policy=""
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added_policy=1
    fi
    local status=0
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends rabbitmq-server >"$WORK_DIR/apt.log" 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$WORK_DIR/apt.log" 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends rabbitmq-server >>"$WORK_DIR/apt.log" 2>&1 || status=1
    fi
    [[ -z "$added_policy" ]] || rm -f "$policy"
    if ((status != 0)); then
        tail -20 "$WORK_DIR/apt.log" >&2
        log "apt-get install rabbitmq-server failed"
        return 1
    fi
}

start_rabbitmq() {
    install_rabbitmq
    RABBIT_DIR="$WORK_DIR/rabbitmq"
    mkdir -p "$RABBIT_DIR/mnesia" "$RABBIT_DIR/log" "$RABBIT_DIR/home"
    echo '[].' >"$RABBIT_DIR/enabled_plugins" # no plugins: the node boots faster
    : >"$RABBIT_DIR/rabbitmq-env.conf"          # ignore /etc/rabbitmq/rabbitmq-env.conf

    if [[ "$(id -u)" == 0 ]]; then
        # Debian's node runs as the rabbitmq user, which must own its directories.
        chown -R rabbitmq:rabbitmq "$RABBIT_DIR"
        chmod 755 "$WORK_DIR"
        RABBIT_AS=(setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups)
    fi

    local amqp_port dist_port
    amqp_port="$(free_port)"
    dist_port="$(free_port)"
    RABBIT_EPMD_PORT="$(free_port)"
    RABBIT_NODE="${RABBIT_NODE_NAME:-llmtune-test-$$}@localhost"
    RABBIT_PORT="$amqp_port"
    RABBIT_ENV=(
        env -i PATH="/usr/lib/rabbitmq/bin:/usr/sbin:/usr/bin:/sbin:/bin" LANG=C.UTF-8 LC_ALL=C.UTF-8
        HOME="$RABBIT_DIR/home"
        RABBITMQ_NODENAME="$RABBIT_NODE"
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
        RABBITMQ_NODE_PORT="$amqp_port"
        RABBITMQ_DIST_PORT="$dist_port"
        ERL_EPMD_PORT="$RABBIT_EPMD_PORT"
        RABBITMQ_MNESIA_BASE="$RABBIT_DIR/mnesia"
        RABBITMQ_LOG_BASE="$RABBIT_DIR/log"
        RABBITMQ_ENABLED_PLUGINS_FILE="$RABBIT_DIR/enabled_plugins"
        RABBITMQ_CONF_ENV_FILE="$RABBIT_DIR/rabbitmq-env.conf"
        RABBITMQ_CONFIG_FILE="$RABBIT_DIR/rabbitmq"
        RABBITMQ_ADVANCED_CONFIG_FILE="$RABBIT_DIR/advanced.config"
        RABBITMQ_PID_FILE="$RABBIT_DIR/node.pid"
    )
    log "starting a private RabbitMQ node $RABBIT_NODE on 127.0.0.1:$amqp_port"
    # Its own session, so every process it starts can be stopped as one group.
    setsid "${RABBIT_AS[@]}" "${RABBIT_ENV[@]}" /usr/lib/rabbitmq/bin/rabbitmq-server \
        >"$RABBIT_DIR/log/console.log" 2>&1 </dev/null &
    RABBIT_PGID=$!
}

wait_for_rabbitmq() {
    local deadline=$((SECONDS + 90))
    until port_in_use "$RABBIT_PORT"; do
        if ! kill -0 "$RABBIT_PGID" 2>/dev/null; then
            tail -30 "$RABBIT_DIR/log/console.log" >&2 || true
            log "the RabbitMQ node exited during start-up"
            return 1
        fi
        if ((SECONDS > deadline)); then
            tail -30 "$RABBIT_DIR/log/console.log" >&2 || true
            log "the RabbitMQ node did not open port $RABBIT_PORT within 90 s"
            return 1
        fi
        sleep 0.1
    done
    log "RabbitMQ is listening"
}

stop_rabbitmq() {
    [[ -n "$RABBIT_PGID" ]] || return 0
    # SIGTERM makes the Erlang VM stop cleanly; whatever is left after 15 s is killed.
    kill -TERM -- "-$RABBIT_PGID" 2>/dev/null || true
    for _ in $(seq 1 150); do
        kill -0 -- "-$RABBIT_PGID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$RABBIT_PGID" 2>/dev/null || true
    # epmd daemonises out of the node's process group; ours has its own port, so stop exactly that one.
    if [[ -n "$RABBIT_EPMD_PORT" ]]; then
        "${RABBIT_AS[@]}" env ERL_EPMD_PORT="$RABBIT_EPMD_PORT" PATH="/usr/lib/erlang/bin:/usr/bin:/bin" \
            epmd -kill >/dev/null 2>&1 || true
    fi
    RABBIT_PGID=""
}

