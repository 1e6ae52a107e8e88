# Shared by start-redis.sh and start-sentinel.sh (POSIX sh: the redis image has no bash).

# The master the sentinels name now, as "HOST PORT", or nothing when none answers.
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
}
