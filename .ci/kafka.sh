# Apache Kafka for the test suite: one KRaft node (broker + controller) on loopback.
#
# Source it (services.sh does):   source .ci/kafka.sh
#   Kafka on 127.0.0.1:$DRIFTLINE_CI_KAFKA_PORT (controller on $DRIFTLINE_CI_KAFKA_CONTROLLER_PORT)
#   -> DRIFTLINE_TEST_KAFKA_BOOTSTRAP
# The broker jars (org.apache.kafka:kafka_2.13 and its runtime dependencies) come from Maven
# Central through Maven and are cached in $DRIFTLINE_CI_CACHE/kafka-<version>/libs; the broker
# runs on this machine's JDK (17+). Data, config, pid and logs live in $DRIFTLINE_CI_STATE/kafka.
# Idempotent: a broker already answering on the port is reused. Works under `set -euo pipefail`.
# Needs VENV (the project's virtual environment, with aiokafka) for the readiness check.
# Stop it with:   kill "$(cat "$DRIFTLINE_CI_STATE/kafka/kafka.pid")"

DRIFTLINE_CI_STATE=${DRIFTLINE_CI_STATE:-/var/tmp/driftline-ci}
DRIFTLINE_CI_CACHE=${DRIFTLINE_CI_CACHE:-/var/cache/driftline-ci}
DRIFTLINE_CI_KAFKA_VERSION=${DRIFTLINE_CI_KAFKA_VERSION:-4.1.2}
DRIFTLINE_CI_KAFKA_PORT=${DRIFTLINE_CI_KAFKA_PORT:-59092}
DRIFTLINE_CI_KAFKA_CONTROLLER_PORT=${DRIFTLINE_CI_KAFKA_CONTROLLER_PORT:-59093}
# A fixed cluster id (22 characters of URL-safe base64 = 16 bytes) keeps the format step repeatable.
_ci_kafka_cluster_id=ZHJpZnRsaW5lLWNpLWtmaw
_ci_kafka_venv=${VENV:-$(pwd)/.venv}

if ! declare -F _ci_log >/dev/null; then
    _ci_log() { printf '== services: %s\n' "$*"; }
fi

_ci_kafka_libs() {
    # Resolve the broker's runtime classpath with a throwaway pom; skip when already cached.
    local home=$DRIFTLINE_CI_CACHE/kafka-$DRIFTLINE_CI_KAFKA_VERSION
    if [ -f "$home/libs/.complete" ]; then
        return 0
    fi
    _ci_log "resolving Kafka $DRIFTLINE_CI_KAFKA_VERSION jars from Maven Central into $home/libs"
    mkdir -p "$home"
    rm -rf "$home/libs.partial"
    cat >"$home/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.driftline.ci</groupId>
  <artifactId>kafka-broker-classpath</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$DRIFTLINE_CI_KAFKA_VERSION</version>
    </dependency>
    <!-- the slf4j 1.x binding Kafka ships with (log4j 2), configured to write a file -->
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>2.24.3</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>2.24.3</version>
    </dependency>
  </dependencies>
</project>
EOF
    mvn -B -q -Dstyle.color=never -f "$home/pom.xml" \
        org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$home/libs.partial" >"$home/mvn.log" 2>&1 || {
        _ci_log "Maven could not resolve the Kafka jars; its output:" >&2
        cat "$home/mvn.log" >&2
        return 1
    }
    touch "$home/libs.partial/.complete"
    rm -rf "$home/libs"
    mv "$home/libs.partial" "$home/libs"
}

_ci_kafka_port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$DRIFTLINE_CI_KAFKA_PORT") 2>/dev/null
}

_ci_kafka_ready() {
    # A metadata request through aiokafka: the broker answers, lists itself and has a controller.
    "$_ci_kafka_venv/bin/python" - "127.0.0.1:$DRIFTLINE_CI_KAFKA_PORT" >/dev/null 2>&1 <<'EOF'
import asyncio
import sys

from aiokafka import AIOKafkaClient


async def main() -> None:
    client = AIOKafkaClient(bootstrap_servers=sys.argv[1], request_timeout_ms=5000)
    try:
        await client.bootstrap()
        brokers = client.cluster.brokers()
        if not brokers or client.cluster.controller is None:
            raise SystemExit(1)
    finally:
        await client.close()


asyncio.run(main())
EOF
}

_ci_kafka_config() {
    local dir=$1
    cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$DRIFTLINE_CI_KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$DRIFTLINE_CI_KAFKA_PORT,CONTROLLER://127.0.0.1:$DRIFTLINE_CI_KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$DRIFTLINE_CI_KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$dir/data
num.partitions=4
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
EOF
    cat >"$dir/log4j2.properties" <<EOF
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
appender.file.type = File
appender.file.name = file
appender.file.fileName = $dir/server.log
appender.file.append = false
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
EOF
}

_ci_kafka() {
    local libs=$DRIFTLINE_CI_CACHE/kafka-$DRIFTLINE_CI_KAFKA_VERSION/libs
    local dir=$DRIFTLINE_CI_STATE/kafka/$DRIFTLINE_CI_KAFKA_VERSION
    local main_cp i
    if ! "$_ci_kafka_venv/bin/python" -c 'import aiokafka' 2>/dev/null; then
        _ci_log "aiokafka is missing from $_ci_kafka_venv: install the project first" >&2
        return 1
    fi
    if _ci_kafka_port_open; then
        for i in $(seq 1 60); do
            if _ci_kafka_ready; then
                _ci_log "Kafka already running on 127.0.0.1:$DRIFTLINE_CI_KAFKA_PORT"
                return 0
            fi
            sleep 0.5
        done
        _ci_log "port $DRIFTLINE_CI_KAFKA_PORT is taken but no Kafka broker answers there" >&2
        return 1
    fi
    _ci_kafka_libs
    mkdir -p "$dir"
    _ci_kafka_config "$dir"
    main_cp="$libs/*"
    if [ ! -f "$dir/data/meta.properties" ]; then
        _ci_log "formatting Kafka storage in $dir/data"
        rm -rf "$dir/data"
        java -Xmx256m -Dlog4j2.configurationFile="$dir/log4j2.properties" -cp "$main_cp" \
            kafka.tools.StorageTool format --ignore-formatted \
            --cluster-id "$_ci_kafka_cluster_id" --config "$dir/server.properties" \
            >"$dir/format.log" 2>&1 || {
            _ci_log "formatting Kafka storage failed; its output:" >&2
            cat "$dir/format.log" >&2
            return 1
        }
    fi
    _ci_log "starting Kafka $DRIFTLINE_CI_KAFKA_VERSION (KRaft) on 127.0.0.1:$DRIFTLINE_CI_KAFKA_PORT"
    nohup java -Xms256m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$dir/log4j2.properties" -cp "$main_cp" \
        kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 </dev/null &
    echo $! >"$DRIFTLINE_CI_STATE/kafka/kafka.pid"
    for i in $(seq 1 240); do
        if _ci_kafka_port_open && _ci_kafka_ready; then
            return 0
        fi
        if ! kill -0 "$(cat "$DRIFTLINE_CI_STATE/kafka/kafka.pid")" 2>/dev/null; then
            break
        fi
        sleep 0.5
    done
    _ci_log "Kafka did not start; the end of its logs:" >&2
    tail -n 40 "$dir/stdout.log" "$dir/server.log" >&2 || true
    return 1
}

_ci_kafka

export DRIFTLINE_TEST_KAFKA_BOOTSTRAP="127.0.0.1:$DRIFTLINE_CI_KAFKA_PORT"
