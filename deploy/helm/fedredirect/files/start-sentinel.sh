#!/bin/sh
# Start one sentinel of the bundled set, monitoring the master the other sentinels name
# now (or, when none answers, the redis pod that is a master), or on the set's first start
# the initial master (redis pod 0). Everything comes from the environment the StatefulSet
# sets: MY_HOST (this pod's DNS name), SENTINEL_PORT, BIND_ADDRESS, DATA_DIR, MASTER_NAME,
# INITIAL_MASTER_HOST, REDIS_PORT, SENTINELS, REDIS_NODES, QUORUM, DOWN_AFTER_MS,
# FAILOVER_TIMEOUT_MS, REDIS_PASSWORD (optional).
set -eu

. "$(dirname "$0")/sentinel-lib.sh"

master=$(current_master)
if [ -z "$master" ]; then
  master="$INITIAL_MASTER_HOST $REDIS_PORT"
fi
host=${master% *}
port=${master#* }
# A sentinel refuses a master name it cannot resolve: wait until the master answers.
until REDISCLI_AUTH="${REDIS_PASSWORD:-}" timeout 3 redis-cli -h "$host" -p "$port" ping 2>/dev/null | grep -q PONG; do
  echo "start-sentinel: waiting for the master $host:$port"
  sleep 1
done

conf="$DATA_DIR/sentinel.conf"
umask 077
cat >"$conf" <<CONF
port $SENTINEL_PORT
bind $BIND_ADDRESS
protected-mode no
dir $DATA_DIR
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $MY_HOST
sentinel announce-port $SENTINEL_PORT
sentinel monitor $MASTER_NAME $host $port $QUORUM
sentinel down-after-milliseconds $MASTER_NAME $DOWN_AFTER_MS
sentinel failover-timeout $MASTER_NAME $FAILOVER_TIMEOUT_MS
sentinel parallel-syncs $MASTER_NAME 1
CONF
if [ -n "${REDIS_PASSWORD:-}" ]; then
  echo "sentinel auth-pass $MASTER_NAME $REDIS_PASSWORD" >>"$conf"
fi
echo "start-sentinel: $MY_HOST monitors $MASTER_NAME at $host:$port"
exec redis-server "$conf" --sentinel
