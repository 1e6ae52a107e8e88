#!/bin/sh
# Start one redis pod of the bundled Sentinel set. Everything comes from the environment
# the StatefulSet sets: MY_HOST (this pod's DNS name), REDIS_PORT, BIND_ADDRESS, DATA_DIR,
# MASTER_NAME, INITIAL_MASTER_HOST, SENTINELS and REDIS_NODES ("HOST:PORT ..."),
# DOWN_AFTER_MS and REDIS_PASSWORD (optional).
#  - The sentinels (or, when none answers, the other redis pods) name another pod as the
#    master: start as its replica.
#  - Nobody knows a master (the set's first start): pod 0 is the master, the others its
#    replicas.
#  - The sentinels still name this pod, which has just restarted with no data: wait for
#    them to promote a replica (which kept the data) and join it, instead of serving empty
#    and having the replicas copy the empty data set. With no replica to promote, start
#    as the master after twice the down-after time and 10 seconds.
set -eu

. "$(dirname "$0")/sentinel-lib.sh"

me="$MY_HOST $REDIS_PORT"
master=$(current_master)
if [ -z "$master" ]; then
  echo "start-redis: no sentinel knows a master yet; $INITIAL_MASTER_HOST starts as master"
  master="$INITIAL_MASTER_HOST $REDIS_PORT"
elif [ "$master" = "$me" ]; then
  waited=0
  limit=$((DOWN_AFTER_MS * 2 / 1000 + 10))
  while [ "$master" = "$me" ] && [ "$waited" -lt "$limit" ]; do
    echo "start-redis: the sentinels still name $MY_HOST, which restarted empty; waiting for a failover"
    sleep 1
    waited=$((waited + 1))
    master=$(current_master)
    master=${master:-$me}
  done
fi

conf="$DATA_DIR/redis.conf"
umask 077
cat >"$conf" <<CONF
port $REDIS_PORT
bind $BIND_ADDRESS
protected-mode no
dir $DATA_DIR
save ""
appendonly no
repl-diskless-sync-delay 0
replica-announce-ip $MY_HOST
replica-announce-port $REDIS_PORT
CONF
if [ -n "${REDIS_PASSWORD:-}" ]; then
  printf 'requirepass %s\nmasterauth %s\n' "$REDIS_PASSWORD" "$REDIS_PASSWORD" >>"$conf"
fi
if [ "$master" = "$me" ]; then
  echo "start-redis: starting $MY_HOST as the master"
else
  echo "start-redis: starting $MY_HOST as a replica of $master"
  echo "replicaof $master" >>"$conf"
fi
exec redis-server "$conf"
