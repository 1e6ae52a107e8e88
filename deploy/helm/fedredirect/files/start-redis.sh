#!/bin/sh
# Start one redis pod of the bundled Sentinel set. Everything comes from the environment
# the StatefulSet sets: MY_HOST (this pod's DNS name), REDIS_PORT, BIND_ADDRESS, DATA_DIR,
# MASTER_NAME, INITIAL_MASTER_HOST, SENTINELS and REDIS_NODES ("HOST:PORT ..."),
# APPENDONLY (yes: the append-only file on the data volume), REDIS_PASSWORD (optional).
#
# A pod never starts as an empty master while another pod may hold the data, and never
# decides that by a timeout:
#  - The sentinels (or, when none answers, the other redis pods) name another pod as the
#    master: start as its replica.
#  - Nobody names a master (the sentinels are all starting too) and this is not pod 0:
#    start as a replica of pod 0, which decides.
#  - The sentinels name this pod, or nobody names one and this is pod 0: start as the
#    master with the data this pod's volume kept (its append-only file). Restarted empty,
#    look at the other pods: when one holds keys, ask the sentinels to fail over to a
#    replica (or, with no sentinel naming a master, promote the pod with the highest
#    replication offset) and join it; when one does not answer, wait for it; only when
#    every other pod answers with no keys at all (the set's first start, or all data
#    already gone) start as an empty master.
set -eu

. "$(dirname "$0")/sentinel-lib.sh"

me="$MY_HOST $REDIS_PORT"
first="$INITIAL_MASTER_HOST $REDIS_PORT"
restored=no
if [ "${APPENDONLY:-no}" = yes ] && { [ -n "$(ls -A "$DATA_DIR/appendonlydir" 2>/dev/null)" ] \
  || [ -s "$DATA_DIR/appendonly.aof" ]; }; then  # Redis 7's layout, Redis 6's
  restored=yes
fi

master=$(current_master)
while :; do
  if [ -n "$master" ] && [ "$master" != "$me" ]; then
    break
  fi
  if [ -z "$master" ] && [ "$me" != "$first" ]; then
    echo "start-redis: no sentinel knows a master yet; $INITIAL_MASTER_HOST decides"
    master=$first
    break
  fi
  if [ "$restored" = yes ]; then
    echo "start-redis: $MY_HOST holds its data (append-only file)"
    master=$me
    break
  fi
  survey=$(survey_peers)
  case "$survey" in
    empty)
      echo "start-redis: no redis pod holds any data: the set's first start"
      master=$me
      break
      ;;
    unknown)
      echo "start-redis: $MY_HOST restarted empty and a redis pod does not answer; waiting for it"
      ;;
    data\ *)
      holder=${survey#data }
      if [ -n "$master" ]; then
        echo "start-redis: the sentinels still name $MY_HOST, which restarted empty; waiting for a failover to a replica (${holder% *} holds the data)"
        request_failover
      else
        echo "start-redis: no sentinel names a master and $MY_HOST restarted empty; promoting ${holder% *}, which holds the data"
        ask_redis ${holder% *} ${holder#* } replicaof "no one" >/dev/null || true
      fi
      ;;
  esac
  sleep 1
  master=$(current_master)
done

conf="$DATA_DIR/redis.conf"
umask 077
cat >"$conf" <<CONF
port $REDIS_PORT
bind $BIND_ADDRESS
protected-mode no
dir $DATA_DIR
save ""
appendonly ${APPENDONLY:-no}
appendfsync everysec
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
