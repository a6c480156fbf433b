#!/usr/bin/env bash
# make e2e: kvd's .deb under a real systemd, doing what an operator does.
#
# Boots Debian 12 with systemd in a container (debootstrap + systemd-nspawn, private network),
# installs the .deb (its postinst enables and starts kvd) next to redis-server, then: start,
# kvload.service as shipped (/etc/default/kvload, the data file where its comments say, a
# second load with another format and options), kvbench --verify, more instances of the
# kvd@.service template (/etc/kvd/NAME.conf on another port, one socket-activated, one without
# a file), edit /etc/kvd.conf and reload under load, restart,
# restart under socket activation under load, kill -9 (systemd restarts kvd), a wedged kvd
# (the watchdog restarts it), Redis down and up (/readyz 503 then 200), the Redis password as a
# LoadCredential= credential, stop (clean exit).
# Leaves nothing running on the host; the debootstrap tree is cached for the next run.
#
# Usage: scripts/e2e-systemd.sh kvd_VERSION_amd64.deb      (as root)
set -euo pipefail

DEB=$(realpath "$1")
PACKAGES=systemd,systemd-sysv,dbus,procps,curl,redis-server,libmicrohttpd12,libhiredis0.14,libsystemd0,init-system-helpers
# One cached tree per package list: branches with different lists do not rebuild each other's.
CACHE=${KVD_E2E_CACHE:-/var/tmp/kvd-e2e-cache/bookworm-$(printf '%s' "$PACKAGES" | md5sum | cut -c1-8)}
URL=http://127.0.0.1:8000
STARTED=$(date +%s)
WORK=""
NSPAWN=""
INIT=""

say() { printf '[e2e %3ss] %s\n' "$(($(date +%s) - STARTED))" "$*"; }
ct() { nsenter -t "$INIT" -a "$@"; }
fail() {
	say "FAIL: $*"
	if [ -n "$INIT" ]; then
		ct systemctl status kvd --no-pager -n 0 2>&1 | sed 's/^/    /' || true
		ct journalctl -u kvd -u kvd.socket -u kvload -u 'kvd@*' --no-pager -n 40 2>&1 | sed 's/^/    /' || true
	fi
	exit 1
}
# Polls a command until it succeeds or the deadline (seconds) passes.
wait_for() {
	local deadline=$(($(date +%s) + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}
# body_is PATH BODY [BASE-URL], status_is PATH STATUS [BASE-URL]
body_is() { [ "$(ct curl -s "${3:-$URL}$1")" = "$2" ]; }
status_is() { [ "$(ct curl -s -o /dev/null -w '%{http_code}' "${3:-$URL}$1")" = "$2" ]; }
main_pid() { ct systemctl show -p MainPID --value "${1:-kvd}"; }
is_active() { [ "$(ct systemctl is-active "$1")" = active ]; }
# Requests $1 on a new connection each time inside the container until $2 exists; one line per
# request: the HTTP status, or curl-N for a connection error.
client_loop() {
	ct sh -c "while [ ! -e '$2' ]; do curl -s -o /dev/null -w '%{http_code}\n' '$URL$1' || echo curl-\$?; done"
}
lines_in() { [ "$(wc -l < "$1")" -ge "$2" ]; }

cleanup() {
	if [ -n "$NSPAWN" ] && kill -0 "$NSPAWN" 2>/dev/null; then
		[ -n "$INIT" ] && ct systemctl poweroff >/dev/null 2>&1 || true
		for _ in $(seq 100); do kill -0 "$NSPAWN" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$NSPAWN" 2>/dev/null || true
		wait "$NSPAWN" 2>/dev/null || true
	fi
	[ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT

# --- a Debian 12 tree with systemd, Redis and kvd's libraries (cached) ---
if [ "$(cat "$CACHE/.kvd-e2e-packages" 2>/dev/null)" != "$PACKAGES" ]; then
	say "debootstrap bookworm into $CACHE (about a minute, once)"
	rm -rf "$CACHE" "$CACHE.tmp" && mkdir -p "$(dirname "$CACHE")"
	debootstrap --variant=minbase --include="$PACKAGES" bookworm "$CACHE.tmp" >"$(dirname "$CACHE")/debootstrap.log" 2>&1 \
		|| { tail -20 "$(dirname "$CACHE")/debootstrap.log"; fail "debootstrap"; }
	echo "$PACKAGES" > "$CACHE.tmp/.kvd-e2e-packages"
	mv "$CACHE.tmp" "$CACHE"
fi
WORK=$(mktemp -d /var/tmp/kvd-e2e.XXXXXX)
cp -a "$CACHE" "$WORK/root"
mkdir -p "$WORK/root/var/cache/kvd-e2e"
cp "$DEB" "$WORK/root/var/cache/kvd-e2e/"

# --- boot ---
say "booting systemd in a container"
setsid systemd-nspawn --register=no --keep-unit --private-network -D "$WORK/root" --boot --console=passive \
	</dev/null >"$WORK/console.log" 2>&1 &
NSPAWN=$!
wait_for 30 pgrep -P "$NSPAWN" -x systemd || fail "the container's systemd did not start: $(cat "$WORK/console.log")"
INIT=$(pgrep -P "$NSPAWN" -x systemd)
wait_for 60 sh -c "nsenter -t $INIT -a systemctl is-system-running | grep -qE '^(running|degraded)$'" || fail "the container did not finish booting"
wait_for 30 is_active redis-server || fail "redis-server is not running in the container"

# --- install: postinst enables and starts kvd ---
say "dpkg -i $(basename "$DEB")"
ct dpkg -i "/var/cache/kvd-e2e/$(basename "$DEB")" >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log"; fail "dpkg -i"; }
ct systemctl is-enabled kvd >/dev/null || fail "kvd.service is not enabled after install"
ct systemctl start kvd
is_active kvd || fail "kvd is not active after systemctl start"
ct systemctl show -p StatusText --value kvd | grep -q "Redis 127.0.0.1:6379 up" || fail "no STATUS= from kvd"
say "kvd active, $(ct systemctl show -p StatusText --value kvd)"
say "hardening in the container: $(ct systemd-analyze security kvd --no-pager | tail -1)"

# --- what the package ships besides the daemon ---
for f in /usr/bin/kvload /usr/bin/kvbench /lib/systemd/system/kvd@.service /etc/default/kvload \
	/usr/share/man/man8/kvd.8.gz /usr/share/man/man5/kvd.conf.5.gz /usr/share/man/man1/kvload.1.gz \
	/usr/share/man/man1/kvbench.1.gz /usr/share/doc/kvd/README.md.gz /usr/share/doc/kvd/systemd.md.gz; do
	ct test -e "$f" || fail "the package does not install $f"
done
ct dpkg-query -W -f='${Conffiles}\n' kvd | grep -q '^ /etc/default/kvload ' || fail "/etc/default/kvload is not a conffile"

# --- kvload.service as shipped: /etc/default/kvload untouched, the file where it says ---
for n in $(seq 1 200); do echo "$(cat /proc/sys/kernel/random/uuid) value number $n"; done > "$WORK/root/var/cache/kvd-e2e/data.txt"
KEY=$(sed -n 7p "$WORK/root/var/cache/kvd-e2e/data.txt" | cut -d' ' -f1)
GONE=$(sed -n 200p "$WORK/root/var/cache/kvd-e2e/data.txt" | cut -d' ' -f1)
ct grep -q '^KVLOAD_FILE=/var/lib/kvd/dataset.seed$' /etc/default/kvload || fail "/etc/default/kvload does not name /var/lib/kvd/dataset.seed"
# As /etc/default/kvload's comments say (before kvload.service ever ran: no /var/lib/kvd yet).
ct test ! -e /var/lib/kvd || fail "/var/lib/kvd exists before kvload ever ran"
ct install -D -m 0644 /var/cache/kvd-e2e/data.txt /var/lib/kvd/dataset.seed
say "systemctl start kvload (the shipped /etc/default/kvload, /var/lib/kvd/dataset.seed)"
ct systemctl start kvload || fail "kvload.service failed"
body_is "/get/$KEY" '"value number 7"' || fail "GET /get/$KEY did not answer the loaded value"
status_is /get/00000000-0000-4000-8000-000000000000 404 || fail "an absent key is not 404"
status_is /readyz 200 || fail "/readyz is not 200"
[ "$(ct readlink /var/lib/kvd)" = private/kvd ] || fail "StateDirectory= did not take /var/lib/kvd over (a symlink to private/kvd)"
[ "$(ct redis-cli HLEN data)" = 200 ] || fail "Redis does not hold the 200 rows"
say "kvload.service loaded 200 rows; /var/lib/kvd -> $(ct readlink /var/lib/kvd), owned by uid $(ct stat -c %u /var/lib/private/kvd)"

# --- kvbench, as installed, checks every answer against the file ---
ct kvbench run --url "$URL" --keys /var/lib/kvd/dataset.seed --sequential --requests 200 --concurrency 4 --verify \
	> "$WORK/kvbench.out" 2>&1 || { cat "$WORK/kvbench.out"; fail "kvbench --verify"; }
grep -q "mismatches: 0" "$WORK/kvbench.out" || { cat "$WORK/kvbench.out"; fail "kvbench reported mismatches"; }
say "kvbench --verify: 200 requests, 0 mismatches"

# --- a second load, edited /etc/default/kvload: another file (through the symlink), format, options ---
# 199 of the rows, and one whose key --strict-keys refuses (--max-errors 1 skips it).
{ sed -n 1,199p "$WORK/root/var/cache/kvd-e2e/data.txt" | awk '{ printf "%s\tsecond load %d\n", $1, NR }'; printf 'not-a-uuid\tx\n'; } \
	> "$WORK/root/var/cache/kvd-e2e/data.tsv"
ct install -m 0644 /var/cache/kvd-e2e/data.tsv /var/lib/kvd/dataset.tsv
ct sed -i -e 's|^KVLOAD_FILE=.*|KVLOAD_FILE=/var/lib/kvd/dataset.tsv|' -e 's|^KVLOAD_FORMAT=.*|KVLOAD_FORMAT=tsv|' \
	-e 's|^KVLOAD_OPTIONS=.*|KVLOAD_OPTIONS="--strict-keys --max-errors 1"|' /etc/default/kvload
ct systemctl start kvload || fail "kvload.service failed on the tsv file with KVLOAD_OPTIONS"
body_is "/get/$KEY" '"second load 7"' || fail "the second load (tsv) is not served"
status_is "/get/$GONE" 404 || fail "--replace kept a key the second file does not have"
status_is /get/not-a-uuid 404 || fail "KVLOAD_OPTIONS' --strict-keys was not applied"
[ "$(ct redis-cli HLEN data)" = 199 ] || fail "Redis does not hold the 199 rows of the second load"
ct journalctl -u kvload --no-pager | grep -q "not-a-uuid" || fail "the skipped row is not in kvload's journal"
ct sh -c "cp /var/cache/kvd-e2e/data.txt /var/lib/kvd/dataset.seed && sed -i -e 's|^KVLOAD_FILE=.*|KVLOAD_FILE=/var/lib/kvd/dataset.seed|' -e 's|^KVLOAD_FORMAT=.*|KVLOAD_FORMAT=seed|' -e 's|^KVLOAD_OPTIONS=.*|KVLOAD_OPTIONS=|' /etc/default/kvload"
ct systemctl start kvload || fail "kvload.service failed on the seed file again"
body_is "/get/$KEY" '"value number 7"' || fail "the third load is not served"
say "second load: tsv with KVLOAD_OPTIONS, --replace dropped the key it lacks; third load: seed again"

# --- the kvd@NAME template: /etc/kvd/a.conf on port 8001, beside kvd.service on 8000 ---
ct sh -c "install -d /etc/kvd && printf '[http]\nport = 8001\nthreads = 1\n' > /etc/kvd/a.conf"
ct systemctl start kvd@a || fail "systemctl start kvd@a"
is_active kvd@a || fail "kvd@a is not active"
body_is "/get/$KEY" '"value number 7"' http://127.0.0.1:8001 || fail "kvd@a does not answer on port 8001"
body_is "/get/$KEY" '"value number 7"' || fail "kvd.service stopped answering on port 8000"
[ "$(main_pid kvd@a)" != "$(main_pid)" ] || fail "kvd@a and kvd share a main process"
ct systemctl show -p StatusText --value kvd@a | grep -q "Redis 127.0.0.1:6379 up" || fail "no STATUS= from kvd@a"
[ "$(ct systemctl show -p WatchdogUSec --value kvd@a)" = 10s ] || fail "kvd@a has no watchdog"
ct journalctl -u kvd@a --no-pager | grep -q "listening on 127.0.0.1:8001.*config /etc/kvd/a.conf" || fail "kvd@a did not start on /etc/kvd/a.conf"
ct kvbench run --url http://127.0.0.1:8001 --keys /var/lib/kvd/dataset.seed --sequential --requests 200 --concurrency 4 --verify \
	> "$WORK/kvbench-a.out" 2>&1 || { cat "$WORK/kvbench-a.out"; fail "kvbench --verify against kvd@a"; }
ct sed -i 's/^threads = 1$/threads = 1\n[log]\nlevel = debug/' /etc/kvd/a.conf
ct systemctl reload kvd@a
wait_for 10 sh -c "nsenter -t $INIT -a journalctl -u kvd@a --no-pager | grep -q 'configuration reloaded from /etc/kvd/a.conf: applied log.level'" \
	|| fail "systemctl reload kvd@a did not re-read /etc/kvd/a.conf"
pid=$(main_pid kvd@a)
ct kill -9 "$pid"
wait_for 20 sh -c "[ \"\$(nsenter -t $INIT -a systemctl show -p NRestarts --value kvd@a)\" -gt 0 ]" || fail "kvd@a was not restarted after kill -9"
wait_for 10 body_is "/get/$KEY" '"value number 7"' http://127.0.0.1:8001 || fail "kvd@a does not answer after its restart"
say "kvd@a on 8001 beside kvd on 8000: own main process, STATUS=, watchdog, reload, restart after kill -9"

# --- an instance behind a socket unit of its own, as kvd@.service's comments say ---
ct sh -c "printf '[redis]\ndb = 0\n' > /etc/kvd/b.conf"
printf '[Socket]\nListenStream=127.0.0.1:8002\nBacklog=511\nNoDelay=yes\n[Install]\nWantedBy=sockets.target\n' > "$WORK/root/etc/systemd/system/kvd@b.socket"
ct systemctl daemon-reload
ct systemctl enable --now kvd@b.socket >/dev/null 2>&1 || fail "systemctl enable --now kvd@b.socket"
! is_active kvd@b || fail "kvd@b started before its first connection"
wait_for 20 body_is "/get/$KEY" '"value number 7"' http://127.0.0.1:8002 || fail "kvd@b.socket did not start kvd@b"
ct journalctl -u kvd@b --no-pager | grep -q "from the service manager" || fail "kvd@b did not take its socket from kvd@b.socket"
body_is "/get/$KEY" '"value number 7"' || fail "kvd.service stopped answering on port 8000"
say "kvd@b started by kvd@b.socket on 8002"

# --- an instance without its file: refused, not started on built-in defaults ---
! ct systemctl start kvd@missing 2>/dev/null || fail "kvd@missing started without /etc/kvd/missing.conf"
ct journalctl -u kvd@missing --no-pager | grep -q "/etc/kvd/missing.conf: cannot read the file" || fail "kvd@missing does not name its missing file"
[ "$(ct systemctl show -p SubState --value kvd@missing)" = failed ] || fail "kvd@missing is restarted although its file is missing (exit 78)"
ct systemctl stop kvd@a kvd@b.socket kvd@b kvd@missing
ct systemctl reset-failed kvd@missing 2>/dev/null || true
[ "$(ct systemctl show -p Result --value kvd@a)" = success ] || fail "kvd@a did not stop cleanly"
body_is "/get/$KEY" '"value number 7"' || fail "kvd.service stopped answering after the instances stopped"
say "kvd@missing refused (no /etc/kvd/missing.conf: exit 78, failed, not restarted); kvd@a and kvd@b stopped cleanly"
say "values served"

# --- edit the configuration and reload, under load ---
ct redis-cli HSET data2 "$KEY" "after reload" >/dev/null
client_loop "/get/$KEY" /run/kvd-e2e-stop-reload > "$WORK/reload.codes" &
LOOP=$!
wait_for 20 lines_in "$WORK/reload.codes" 50 || fail "the client loop does not run"
ct sed -i -e 's/^# hash = data$/hash = data2/' -e 's/^# level = info$/level = debug/' /etc/kvd.conf
ct systemctl reload kvd
wait_for 10 body_is "/get/$KEY" '"after reload"' || fail "the reloaded [redis] hash does not take effect"
before=$(wc -l < "$WORK/reload.codes")
wait_for 20 lines_in "$WORK/reload.codes" $((before + 50)) || fail "the client loop stalled after reload"
ct touch /run/kvd-e2e-stop-reload; wait "$LOOP"
[ -z "$(grep -v '^200$' "$WORK/reload.codes")" ] || fail "requests failed during reload: $(sort "$WORK/reload.codes" | uniq -c)"
ct journalctl -u kvd --no-pager | grep -q "configuration reloaded from /etc/kvd.conf: applied redis.hash, log.level" \
	|| fail "the reload was not reported in the journal"
say "reload applied, $(wc -l < "$WORK/reload.codes") requests across it, none failed"

# --- restart ---
pid=$(main_pid)
ct systemctl restart kvd
is_active kvd && [ "$(main_pid)" != "$pid" ] || fail "systemctl restart kvd"
body_is "/get/$KEY" '"after reload"' || fail "no answer after restart"
say "restart: new main process $(main_pid)"

# --- restart under socket activation, under load: no connection refused ---
ct systemctl stop kvd
ct systemctl enable --now kvd.socket >/dev/null 2>&1
ct systemctl start kvd
ct journalctl -u kvd --no-pager -n 5 | grep -q "from the service manager" || fail "kvd did not take the socket from kvd.socket"
client_loop "/get/$KEY" /run/kvd-e2e-stop-restart > "$WORK/restart.codes" &
LOOP=$!
wait_for 20 lines_in "$WORK/restart.codes" 50 || fail "the client loop does not run"
for round in 1 2 3; do
	before=$(wc -l < "$WORK/restart.codes")
	ct systemctl restart kvd
	wait_for 20 lines_in "$WORK/restart.codes" $((before + 30)) || fail "the client loop stalled after restart $round"
done
ct touch /run/kvd-e2e-stop-restart; wait "$LOOP"
[ -z "$(grep -v '^200$' "$WORK/restart.codes")" ] || fail "requests failed across socket-activated restarts: $(sort "$WORK/restart.codes" | uniq -c)"
say "3 restarts under socket activation, $(wc -l < "$WORK/restart.codes") requests, none refused or failed"

# --- kill -9: systemd restarts kvd (Restart=on-failure) ---
pid=$(main_pid)
restarts=$(ct systemctl show -p NRestarts --value kvd)
ct kill -9 "$pid"
wait_for 20 sh -c "[ \"\$(nsenter -t $INIT -a systemctl show -p NRestarts --value kvd)\" -gt $restarts ]" || fail "kvd was not restarted after kill -9"
wait_for 20 is_active kvd || fail "kvd not active after kill -9"
wait_for 10 body_is "/get/$KEY" '"after reload"' || fail "no answer after kill -9"
say "kill -9 $pid: restarted by systemd as $(main_pid)"

# --- a wedged kvd: the watchdog pings stop and systemd restarts it ---
mkdir -p "$WORK/root/etc/systemd/system/kvd.service.d"
printf '[Service]\nWatchdogSec=2s\nTimeoutAbortSec=2s\n' > "$WORK/root/etc/systemd/system/kvd.service.d/e2e-watchdog.conf"
ct systemctl daemon-reload
ct systemctl restart kvd
pid=$(main_pid)
ct kill -STOP "$pid"
wait_for 30 sh -c "nsenter -t $INIT -a journalctl -u kvd --no-pager | grep -q 'Watchdog timeout'" || fail "no watchdog timeout for a stopped kvd"
wait_for 30 sh -c "[ \"\$(nsenter -t $INIT -a systemctl show -p MainPID --value kvd)\" != $pid ] && nsenter -t $INIT -a systemctl is-active kvd" \
	|| fail "kvd was not restarted after the watchdog timeout"
rm "$WORK/root/etc/systemd/system/kvd.service.d/e2e-watchdog.conf"
ct systemctl daemon-reload
say "watchdog: stopped kvd $pid killed and restarted as $(main_pid)"

# --- Redis down and back ---
wait_for 10 status_is /readyz 200 || fail "/readyz not 200 before stopping Redis"
ct systemctl stop redis-server
wait_for 10 status_is /readyz 503 || fail "/readyz is not 503 with Redis stopped"
status_is /healthz 200 && is_active kvd || fail "kvd did not keep running without Redis"
wait_for 15 sh -c "nsenter -t $INIT -a systemctl show -p StatusText --value kvd | grep -q DOWN" || fail "STATUS= does not say Redis is down"
ct systemctl start redis-server
wait_for 10 status_is /readyz 200 || fail "/readyz not 200 after Redis came back"
body_is "/get/$KEY" '"after reload"' || fail "no value after Redis came back"
say "Redis stopped: /readyz 503, kvd running; started: /readyz 200"

# --- the Redis password as a systemd credential ---
SECRET=e2e-cr3dential-$$
ct redis-cli CONFIG SET requirepass "$SECRET" >/dev/null
# Connections made before keep their access: drop kvd's, its new ones must authenticate.
ct sh -c "REDISCLI_AUTH='$SECRET' redis-cli CLIENT KILL TYPE normal" >/dev/null
wait_for 10 status_is /readyz 503 || fail "/readyz is not 503 once Redis wants a password"
ct sh -c "install -d -m 0700 /etc/kvd && umask 077 && printf '%s\n' '$SECRET' > /etc/kvd/redis-password"
printf '[Service]\nLoadCredential=redis-password:/etc/kvd/redis-password\n' > "$WORK/root/etc/systemd/system/kvd.service.d/credentials.conf"
ct sed -i 's/^# password_file =$/password_file = redis-password/' /etc/kvd.conf
ct systemctl daemon-reload
ct systemctl restart kvd
wait_for 10 status_is /readyz 200 || fail "kvd does not authenticate with the password from \$CREDENTIALS_DIRECTORY"
body_is "/get/$KEY" '"after reload"' || fail "no value with the password from the credential"
! ct journalctl --no-pager | grep -q "$SECRET" || fail "the password is in the journal"
! ct ps -eo args | grep -v grep | grep -q "$SECRET" || fail "the password is on a command line"
say "Redis password from LoadCredential=: authenticated, not in the journal nor on a command line"

# --- stop: clean exit ---
pid=$(main_pid)
ct systemctl stop kvd.socket kvd
[ "$(ct systemctl show -p Result --value kvd)" = success ] || fail "kvd did not stop cleanly"
[ "$(ct systemctl show -p ExecMainStatus --value kvd)" = 0 ] || fail "kvd's exit status is not 0"
ct journalctl -u kvd --no-pager _PID="$pid" | grep -q "kvd: stopped" || fail "no clean stop in the journal"
say "systemctl stop kvd: exit 0, \"stopped\" in the journal"
say "PASS"
