/**
 * The fallback service manager put on hosts where PID 1 is not systemd, at FALLBACK.helper.
 * Its logic lives only here; the service operation calls it, the service fact reads its pidfiles.
 * Tested for real in test/provision/facts-real.test.ts (paths overridable by VZSB_* variables).
 */
export const serviceHelperScript = `#!/bin/sh
# vzsb service fallback: runs systemd service units on hosts where PID 1 is not systemd
# (containers, CI). Installed and replaced by \`vzsb deploy\`; see docs/operations.md (service).
#
# usage: service.sh start|stop|restart|reload|status|enable|disable|is-enabled NAME
#        service.sh boot        (start every enabled service; run by cron @reboot)
#
# A unit is read from the first of $VZSB_UNIT_DIRS holding NAME.service. Understood from its
# [Service] section: ExecStart= ExecReload= Type= (simple, exec, notify, idle) User= Group=
# WorkingDirectory= Environment= EnvironmentFile=. The process runs under start-stop-daemon
# with a pidfile in $VZSB_RUN_DIR; its output goes to $VZSB_LOG_DIR/NAME.log.
# Exit codes: 0 done (status: running), 1 failed, 2 usage, 3 status: not running.
set -u

UNIT_DIRS=\${VZSB_UNIT_DIRS:-/etc/systemd/system /lib/systemd/system /usr/lib/systemd/system}
RUN_DIR=\${VZSB_RUN_DIR:-/run/vzsb}
LOG_DIR=\${VZSB_LOG_DIR:-/var/log/vzsb}
ENABLED_DIR=\${VZSB_ENABLED_DIR:-/etc/vzsb/services.enabled}
CRON_FILE=\${VZSB_CRON_FILE:-/etc/cron.d/vzsb-services}
STOP_TIMEOUT=\${VZSB_STOP_TIMEOUT:-10}

die() { echo "service.sh: $*" >&2; exit 1; }

unit_file() {
  for dir in $UNIT_DIRS; do
    if [ -f "$dir/$1.service" ]; then echo "$dir/$1.service"; return 0; fi
  done
  return 1
}

# Every value of KEY= in the [Service] section, in order, one per line. Continuation lines are
# joined; an empty assignment resets the list (as systemd does).
unit_values() {
  awk -v key="$2" '
    cont != "" { $0 = cont $0; cont = "" }
    /\\\\$/ { cont = substr($0, 1, length($0) - 1) " "; next }
    /^[ \\t]*[#;]/ { next }
    /^[ \\t]*\\[/ { section = $0; gsub(/[ \\t\\[\\]]/, "", section); next }
    section == "Service" {
      line = $0; sub(/^[ \\t]+/, "", line)
      eq = index(line, "=")
      if (eq == 0) next
      k = substr(line, 1, eq - 1); sub(/[ \\t]+$/, "", k)
      if (k != key) next
      v = substr(line, eq + 1); sub(/^[ \\t]+/, "", v); sub(/[ \\t\\r]+$/, "", v)
      if (v == "") n = 0; else values[++n] = v
    }
    END { for (i = 1; i <= n; i++) print values[i] }' "$1"
}

unit_value() { unit_values "$1" "$2" | tail -n 1; }

# Sets $pid when the service's pidfile names a live (not zombie) process.
running() {
  pid=$(cat "$RUN_DIR/$1.pid" 2>/dev/null) || return 1
  case $pid in '' | *[!0-9]*) return 1 ;; esac
  state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# Exports KEY=VALUE lines of a systemd EnvironmentFile (no shell evaluation of values).
load_env_file() {
  while IFS= read -r line || [ -n "$line" ]; do
    line=\${line#"\${line%%[! 	]*}"}
    case $line in '' | '#'* | ';'*) continue ;; esac
    line=\${line#export }
    key=\${line%%=*}
    value=\${line#*=}
    case $key in '' | [0-9]* | *[!A-Za-z0-9_]*) continue ;; esac
    case $value in
      \\"*\\") value=\${value#\\"}; value=\${value%\\"} ;;
      \\'*\\') value=\${value#\\'}; value=\${value%\\'} ;;
    esac
    export "$key=$value"
  done <"$1"
}

start() {
  name=$1
  unit=$(unit_file "$name") || die "$name: no unit file $name.service in $UNIT_DIRS"
  if running "$name"; then echo "$name: already running (pid $pid)"; return 0; fi
  type=$(unit_value "$unit" Type)
  case \${type:-simple} in
    simple | exec | notify | idle) ;;
    *) die "$name: Type=$type is not supported without systemd (simple, exec, notify, idle are)" ;;
  esac
  cmd=$(unit_value "$unit" ExecStart)
  [ -n "$cmd" ] || die "$name: $unit has no ExecStart="
  while :; do case $cmd in [-@+!:]*) cmd=\${cmd#?} ;; *) break ;; esac; done
  user=$(unit_value "$unit" User)
  group=$(unit_value "$unit" Group)
  dir=$(unit_value "$unit" WorkingDirectory)
  mkdir -p "$RUN_DIR" "$LOG_DIR" || die "$name: cannot create $RUN_DIR or $LOG_DIR"
  (
    for file in $(unit_values "$unit" EnvironmentFile); do
      case $file in
        -*) file=\${file#-}; [ -r "$file" ] || continue ;;
      esac
      [ -r "$file" ] || die "$name: EnvironmentFile $file is not readable"
      load_env_file "$file"
    done
    # Environment= holds shell-like quoted assignments: "A=1" "B=two words" C=3
    while IFS= read -r assignments; do
      [ -n "$assignments" ] || continue
      eval "export $assignments" || die "$name: bad Environment=$assignments"
    done <<VZSB_ENV
$(unit_values "$unit" Environment)
VZSB_ENV
    set -- --start --quiet --background --make-pidfile --pidfile "$RUN_DIR/$name.pid" --output "$LOG_DIR/$name.log"
    case $dir in
      '') ;;
      -*) [ -d "\${dir#-}" ] && set -- "$@" --chdir "\${dir#-}" ;;
      *) set -- "$@" --chdir "$dir" ;;
    esac
    if [ -n "$user" ]; then
      set -- "$@" --chuid "$user\${group:+:$group}"
    elif [ -n "$group" ]; then
      set -- "$@" --group "$group"
    fi
    start-stop-daemon "$@" --startas /bin/sh -- -c "exec $cmd"
  ) || die "$name: start failed"
  running "$name" || die "$name: exited at once (see $LOG_DIR/$name.log)"
  echo "$name: started (pid $pid)"
}

# SIGTERM, then SIGKILL after $STOP_TIMEOUT seconds. The wait is ours, not start-stop-daemon
# --retry's: that one waits for a zombie to be reaped, which a slow PID 1 (containers) delays.
stop() {
  name=$1
  if ! running "$name"; then rm -f "$RUN_DIR/$name.pid"; echo "$name: not running"; return 0; fi
  start-stop-daemon --stop --quiet --oknodo --signal TERM --pidfile "$RUN_DIR/$name.pid" || die "$name: cannot signal pid $pid"
  ticks=0
  while running "$name"; do
    ticks=$((ticks + 1))
    [ "$ticks" -eq $((STOP_TIMEOUT * 10)) ] && kill -KILL "$pid" 2>/dev/null
    [ "$ticks" -gt $((STOP_TIMEOUT * 10 + 50)) ] && die "$name: pid $pid did not stop"
    sleep 0.1 2>/dev/null || sleep 1
  done
  rm -f "$RUN_DIR/$name.pid"
  echo "$name: stopped"
}

reload() {
  name=$1
  if ! running "$name"; then start "$name"; return; fi
  unit=$(unit_file "$name") || die "$name: no unit file $name.service in $UNIT_DIRS"
  cmd=$(unit_value "$unit" ExecReload)
  if [ -n "$cmd" ]; then
    while :; do case $cmd in [-@+!:]*) cmd=\${cmd#?} ;; *) break ;; esac; done
    MAINPID=$pid sh -c "$cmd" || die "$name: ExecReload failed"
  else
    kill -HUP "$pid" || die "$name: cannot signal pid $pid"
  fi
  echo "$name: reloaded"
}

enable() {
  mkdir -p "$ENABLED_DIR" "$(dirname "$CRON_FILE")" || die "cannot create $ENABLED_DIR"
  : >"$ENABLED_DIR/$1" || die "$1: cannot write $ENABLED_DIR/$1"
  self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
  line="@reboot root $self boot >/dev/null 2>&1"
  if [ "$(cat "$CRON_FILE" 2>/dev/null)" != "$line" ]; then
    printf '%s\\n' "$line" >"$CRON_FILE.tmp" && chmod 0644 "$CRON_FILE.tmp" && mv -f "$CRON_FILE.tmp" "$CRON_FILE" ||
      die "cannot write $CRON_FILE"
  fi
  echo "$1: enabled"
}

boot() {
  failed=0
  for marker in "$ENABLED_DIR"/*; do
    [ -e "$marker" ] || continue
    (start "$(basename "$marker")") || failed=1
  done
  return $failed
}

[ $# -ge 1 ] || { echo "usage: $0 start|stop|restart|reload|status|enable|disable|is-enabled NAME | boot" >&2; exit 2; }
action=$1
if [ "$action" = boot ]; then boot; exit; fi
[ $# -eq 2 ] || { echo "usage: $0 $action NAME" >&2; exit 2; }
name=\${2%.service}
case $name in '' | */* | .*) die "bad service name: $2" ;; esac
case $action in
  start) start "$name" ;;
  stop) stop "$name" ;;
  restart) stop "$name" && start "$name" ;;
  reload) reload "$name" ;;
  status) if running "$name"; then echo "running $pid"; else echo stopped; exit 3; fi ;;
  enable) enable "$name" ;;
  disable) rm -f "$ENABLED_DIR/$name" && echo "$name: disabled" ;;
  is-enabled) if [ -e "$ENABLED_DIR/$name" ]; then echo enabled; else echo disabled; exit 1; fi ;;
  *) echo "usage: $0 start|stop|restart|reload|status|enable|disable|is-enabled NAME | boot" >&2; exit 2 ;;
esac
`;
