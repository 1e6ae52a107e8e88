# Shared by start-redis.sh and start-sentinel.sh (POSIX sh: the redis image has no bash).
# Reads SENTINELS and REDIS_NODES ("HOST:PORT ..."), MASTER_NAME, MY_HOST, REDIS_PASSWORD.

# The master now, as "HOST PORT": the one the sentinels name; when no sentinel answers
# (they are all restarting too), a redis pod other than this one that is a master; else
# nothing (the set's first start).
current_master() {
  for sentinel in $SENTINELS; do
    answer=$(timeout 3 redis-cli -h "${sentinel%:*}" -p "${sentinel##*:}" --raw \
      SENTINEL get-master-addr-by-name "$MASTER_NAME" 2>/dev/null) || continue
    host=$(printf '%s\n' "$answer" | sed -n 1p)
    port=$(printf '%s\n' "$answer" | sed -n 2p)
    case "$port" in
      '' | *[!0-9]*) continue ;;
    esac
    if [ -n "$host" ]; then
      echo "$host $port"
      return 0
    fi
  done
  for node in $REDIS_NODES; do
    [ "${node%:*}" = "$MY_HOST" ] && continue
    if REDISCLI_AUTH="${REDIS_PASSWORD:-}" timeout 3 redis-cli -h "${node%:*}" -p "${node##*:}" \
      info replication 2>/dev/null | grep -q '^role:master'; then
      echo "${node%:*} ${node##*:}"
      return 0
    fi
  done
}

# A redis pod's answer to a command, or nothing (exit status 1) when it does not answer.
ask_redis() {
  REDISCLI_AUTH="${REDIS_PASSWORD:-}" timeout 3 redis-cli -h "$1" -p "$2" --raw "$3" ${4:-} 2>/dev/null
}

# What the other redis pods hold: "data HOST PORT" for the one with the highest replication
# offset among those holding keys; else "unknown" when one of them does not answer (it may
# be restarting with its data); else "empty".
survey_peers() {
  best="" best_offset=-1 silent=no
  for node in $REDIS_NODES; do
    [ "${node%:*}" = "$MY_HOST" ] && continue
    keys=$(ask_redis "${node%:*}" "${node##*:}" dbsize) || keys=""
    case "$keys" in
      '' | *[!0-9]*) silent=yes; continue ;;  # down, or still loading its data
    esac
    [ "$keys" -gt 0 ] || continue
    offset=$(ask_redis "${node%:*}" "${node##*:}" info replication \
      | sed -n 's/^master_repl_offset:\([0-9]*\).*/\1/p')
    if [ "${offset:-0}" -gt "$best_offset" ]; then
      best="${node%:*} ${node##*:}" best_offset=${offset:-0}
    fi
  done
  if [ -n "$best" ]; then echo "data $best"; elif [ "$silent" = yes ]; then echo unknown; else echo empty; fi
}

# Ask the sentinels to promote a replica of the master now (SENTINEL FAILOVER), rather than
# after their own down-after and vote; the first sentinel that answers takes it.
request_failover() {
  for sentinel in $SENTINELS; do
    answer=$(timeout 3 redis-cli -h "${sentinel%:*}" -p "${sentinel##*:}" \
      SENTINEL failover "$MASTER_NAME" 2>/dev/null) || continue
    echo "start-redis: SENTINEL FAILOVER asked of ${sentinel%:*}: $answer"
    return 0
  done
}
