# Services for the test suite, on loopback, idempotently: a running service is reused.
#
# Source it (it exports the URLs the tests read):   source .ci/services.sh
#   PostgreSQL (Debian's package) on 127.0.0.1:$DRIFTLINE_CI_PG_PORT  -> DRIFTLINE_TEST_POSTGRES_URL
#   S3 API (moto's standalone server) on 127.0.0.1:$DRIFTLINE_CI_S3_PORT -> DRIFTLINE_TEST_S3_ENDPOINT
#   Redis (Debian's package) on 127.0.0.1:$DRIFTLINE_CI_REDIS_PORT -> DRIFTLINE_TEST_REDIS_URL
# State (PostgreSQL cluster, logs) lives in $DRIFTLINE_CI_STATE, outside the work tree.
# Expects VENV (the virtual environment with moto installed); works under `set -euo pipefail`.

DRIFTLINE_CI_STATE=${DRIFTLINE_CI_STATE:-/var/tmp/driftline-ci}
DRIFTLINE_CI_PG_PORT=${DRIFTLINE_CI_PG_PORT:-55432}
DRIFTLINE_CI_S3_PORT=${DRIFTLINE_CI_S3_PORT:-55900}
DRIFTLINE_CI_REDIS_PORT=${DRIFTLINE_CI_REDIS_PORT:-56379}
_ci_venv=${VENV:-$(pwd)/.venv}

_ci_log() { printf '== services: %s\n' "$*"; }

_ci_as_postgres() {
    # PostgreSQL refuses to run as root: as root, run its tools as the postgres user.
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

_ci_postgres() {
    local bin data
    if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
        _ci_log "installing PostgreSQL from Debian's packages"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq postgresql >/dev/null
    fi
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    data=$DRIFTLINE_CI_STATE/postgres
    if "$bin/pg_isready" -q -h 127.0.0.1 -p "$DRIFTLINE_CI_PG_PORT"; then
        _ci_log "PostgreSQL already running on 127.0.0.1:$DRIFTLINE_CI_PG_PORT"
        return 0
    fi
    mkdir -p "$DRIFTLINE_CI_STATE"
    chmod 755 "$DRIFTLINE_CI_STATE"
    if [ ! -f "$data/PG_VERSION" ]; then
        _ci_log "creating a PostgreSQL cluster in $data"
        rm -rf "$data"
        mkdir -p "$data"
        if [ "$(id -u)" -eq 0 ]; then
            chown postgres: "$data"
        fi
        _ci_as_postgres "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 >/dev/null
    fi
    _ci_log "starting PostgreSQL on 127.0.0.1:$DRIFTLINE_CI_PG_PORT"
    _ci_as_postgres "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
        -o "-h 127.0.0.1 -p $DRIFTLINE_CI_PG_PORT -k $data" start >/dev/null
}

_ci_s3_up() {
    "$_ci_venv/bin/python" -c 'import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2)' "http://127.0.0.1:$DRIFTLINE_CI_S3_PORT/moto-api/" \
        >/dev/null 2>&1
}

_ci_s3() {
    local i
    if _ci_s3_up; then
        _ci_log "S3 API already running on 127.0.0.1:$DRIFTLINE_CI_S3_PORT"
        return 0
    fi
    mkdir -p "$DRIFTLINE_CI_STATE"
    _ci_log "starting moto's S3 server on 127.0.0.1:$DRIFTLINE_CI_S3_PORT"
    nohup "$_ci_venv/bin/moto_server" -H 127.0.0.1 -p "$DRIFTLINE_CI_S3_PORT" \
        >"$DRIFTLINE_CI_STATE/moto.log" 2>&1 </dev/null &
    for i in $(seq 1 60); do
        if _ci_s3_up; then
            return 0
        fi
        sleep 0.5
    done
    _ci_log "moto did not start; its log:" >&2
    cat "$DRIFTLINE_CI_STATE/moto.log" >&2
    return 1
}

_ci_redis() {
    local i
    if ! command -v redis-server >/dev/null 2>&1; then
        _ci_log "installing Redis from Debian's packages"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq redis-server >/dev/null
    fi
    if redis-cli -h 127.0.0.1 -p "$DRIFTLINE_CI_REDIS_PORT" ping >/dev/null 2>&1; then
        _ci_log "Redis already running on 127.0.0.1:$DRIFTLINE_CI_REDIS_PORT"
        return 0
    fi
    mkdir -p "$DRIFTLINE_CI_STATE/redis"
    _ci_log "starting Redis on 127.0.0.1:$DRIFTLINE_CI_REDIS_PORT"
    redis-server --bind 127.0.0.1 --port "$DRIFTLINE_CI_REDIS_PORT" --daemonize yes \
        --save "" --appendonly no --dir "$DRIFTLINE_CI_STATE/redis" \
        --logfile "$DRIFTLINE_CI_STATE/redis/redis.log" >/dev/null
    for i in $(seq 1 60); do
        if redis-cli -h 127.0.0.1 -p "$DRIFTLINE_CI_REDIS_PORT" ping >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.25
    done
    _ci_log "Redis did not start; its log:" >&2
    cat "$DRIFTLINE_CI_STATE/redis/redis.log" >&2
    return 1
}

_ci_postgres
_ci_s3
_ci_redis

export DRIFTLINE_TEST_POSTGRES_URL="postgresql+psycopg2://postgres@127.0.0.1:$DRIFTLINE_CI_PG_PORT/postgres"
export DRIFTLINE_TEST_S3_ENDPOINT="127.0.0.1:$DRIFTLINE_CI_S3_PORT"
source "$(dirname "${BASH_SOURCE[0]}")/kafka.sh"  # Kafka (KRaft) on 127.0.0.1:59092 -> DRIFTLINE_TEST_KAFKA_BOOTSTRAP
export DRIFTLINE_TEST_REDIS_URL="redis://127.0.0.1:$DRIFTLINE_CI_REDIS_PORT/0"
