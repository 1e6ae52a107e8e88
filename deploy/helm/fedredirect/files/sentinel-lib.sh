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
