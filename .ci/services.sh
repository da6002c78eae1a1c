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

# MLflow tracking server (its own venv: mlflow==3.17.2, sqlite backend, local artifacts)
# on 127.0.0.1:$DRIFTLINE_CI_MLFLOW_PORT -> DRIFTLINE_TEST_MLFLOW_URI
DRIFTLINE_CI_MLFLOW_PORT=${DRIFTLINE_CI_MLFLOW_PORT:-55000}

_ci_mlflow_up() {
    "$_ci_venv/bin/python" -c 'import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2)' "http://127.0.0.1:$DRIFTLINE_CI_MLFLOW_PORT/health" \
        >/dev/null 2>&1
}

_ci_mlflow() {
    local i venv=$DRIFTLINE_CI_STATE/mlflow-venv dir=$DRIFTLINE_CI_STATE/mlflow
    if _ci_mlflow_up; then
        _ci_log "MLflow already running on 127.0.0.1:$DRIFTLINE_CI_MLFLOW_PORT"
        return 0
    fi
    mkdir -p "$dir/artifacts"
    if [ ! -x "$venv/bin/mlflow" ]; then
        _ci_log "installing mlflow==3.17.2 into $venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q mlflow==3.17.2 >"$DRIFTLINE_CI_STATE/mlflow-install.log" 2>&1
    fi
    _ci_log "starting MLflow on 127.0.0.1:$DRIFTLINE_CI_MLFLOW_PORT"
    nohup "$venv/bin/mlflow" server --backend-store-uri "sqlite:///$dir/mlflow.db" \
        --default-artifact-root "$dir/artifacts" --host 127.0.0.1 \
        --port "$DRIFTLINE_CI_MLFLOW_PORT" --workers 1 \
        >"$dir/server.log" 2>&1 </dev/null &
    for i in $(seq 1 240); do
        if _ci_mlflow_up; then
            return 0
        fi
        sleep 0.5
    done
    _ci_log "MLflow did not start; its log:" >&2
    tail -n 50 "$dir/server.log" >&2
    return 1
}

export MLFLOW_DISABLE_TELEMETRY=true  # no usage reports from the client or the server
_ci_mlflow
export DRIFTLINE_TEST_MLFLOW_URI="http://127.0.0.1:$DRIFTLINE_CI_MLFLOW_PORT"

# SMTP sink (aiosmtpd from the venv, .ci/smtp_sink.py): plain+STARTTLS and implicit TLS, AUTH;
# received mail lands in $DRIFTLINE_TEST_SMTP_MAILDIR. Prometheus Alertmanager from Debian's
# package (prometheus-alertmanager), receiving alerts on its API v2.
DRIFTLINE_CI_SMTP_PORT=${DRIFTLINE_CI_SMTP_PORT:-58025}
DRIFTLINE_CI_SMTPS_PORT=${DRIFTLINE_CI_SMTPS_PORT:-58465}
DRIFTLINE_CI_AM_PORT=${DRIFTLINE_CI_AM_PORT:-59193}

_ci_port_open() {
    "$_ci_venv/bin/python" -c 'import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()' "$1" \
        >/dev/null 2>&1
}

_ci_smtp() {
    local dir=$DRIFTLINE_CI_STATE/smtp i
    mkdir -p "$dir/mail"
    if ! command -v openssl >/dev/null 2>&1; then
        _ci_log "installing openssl from Debian's packages (for the SMTP sink's certificate)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq openssl >/dev/null
    fi
    if [ ! -f "$dir/cert.pem" ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=127.0.0.1" \
            -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
            -keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1
    fi
    if _ci_port_open "$DRIFTLINE_CI_SMTP_PORT" && _ci_port_open "$DRIFTLINE_CI_SMTPS_PORT"; then
        _ci_log "SMTP sink already running on 127.0.0.1:$DRIFTLINE_CI_SMTP_PORT"
        return 0
    fi
    if ! "$_ci_venv/bin/python" -c 'import aiosmtpd' >/dev/null 2>&1; then
        "$_ci_venv/bin/python" -m pip install --quiet 'aiosmtpd>=1.4.6'
    fi
    _ci_log "starting the SMTP sink on 127.0.0.1:$DRIFTLINE_CI_SMTP_PORT (TLS $DRIFTLINE_CI_SMTPS_PORT)"
    nohup "$_ci_venv/bin/python" "$(dirname "${BASH_SOURCE[0]}")/smtp_sink.py" \
        --folder "$dir/mail" --port "$DRIFTLINE_CI_SMTP_PORT" --tls-port "$DRIFTLINE_CI_SMTPS_PORT" \
        --cert "$dir/cert.pem" --key "$dir/key.pem" --user driftline --password sink-password \
        >"$dir/smtp.log" 2>&1 </dev/null &
    for i in $(seq 1 60); do
        if _ci_port_open "$DRIFTLINE_CI_SMTP_PORT" && _ci_port_open "$DRIFTLINE_CI_SMTPS_PORT"; then
            return 0
        fi
        sleep 0.25
    done
    _ci_log "the SMTP sink did not start; its log:" >&2
    cat "$dir/smtp.log" >&2
    return 1
}

_ci_alertmanager_up() {
    "$_ci_venv/bin/python" -c 'import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2)' "http://127.0.0.1:$DRIFTLINE_CI_AM_PORT/-/ready" \
        >/dev/null 2>&1
}

_ci_alertmanager() {
    local dir=$DRIFTLINE_CI_STATE/alertmanager i
    if ! command -v prometheus-alertmanager >/dev/null 2>&1; then
        _ci_log "installing Alertmanager from Debian's packages"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq prometheus-alertmanager >/dev/null
    fi
    if _ci_alertmanager_up; then
        _ci_log "Alertmanager already running on 127.0.0.1:$DRIFTLINE_CI_AM_PORT"
        return 0
    fi
    mkdir -p "$dir/data"
    printf 'route:\n  receiver: sink\n  group_wait: 1h\nreceivers:\n  - name: sink\n' \
        >"$dir/alertmanager.yml"
    _ci_log "starting Alertmanager on 127.0.0.1:$DRIFTLINE_CI_AM_PORT"
    nohup prometheus-alertmanager --config.file="$dir/alertmanager.yml" \
        --storage.path="$dir/data" --web.listen-address="127.0.0.1:$DRIFTLINE_CI_AM_PORT" \
        --cluster.listen-address="" >"$dir/alertmanager.log" 2>&1 </dev/null &
    for i in $(seq 1 60); do
        if _ci_alertmanager_up; then
            return 0
        fi
        sleep 0.5
    done
    _ci_log "Alertmanager did not start; its log:" >&2
    cat "$dir/alertmanager.log" >&2
    return 1
}

_ci_smtp
_ci_alertmanager
export DRIFTLINE_TEST_SMTP_HOST=127.0.0.1
export DRIFTLINE_TEST_SMTP_PORT=$DRIFTLINE_CI_SMTP_PORT
export DRIFTLINE_TEST_SMTP_TLS_PORT=$DRIFTLINE_CI_SMTPS_PORT
export DRIFTLINE_TEST_SMTP_USER=driftline
export DRIFTLINE_TEST_SMTP_PASSWORD=sink-password
export DRIFTLINE_TEST_SMTP_CAFILE=$DRIFTLINE_CI_STATE/smtp/cert.pem
export DRIFTLINE_TEST_SMTP_MAILDIR=$DRIFTLINE_CI_STATE/smtp/mail
export DRIFTLINE_TEST_ALERTMANAGER_URL="http://127.0.0.1:$DRIFTLINE_CI_AM_PORT"
