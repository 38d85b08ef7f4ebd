#!/usr/bin/env bash
# make demo: the platform's main job end to end on this machine.
#   restored --dev (control plane + embedded hypervisor agent) + libvirtd + QEMU,
#   a demo tenant, the test image as its recovery point, a restore created with
#   restorectl, progress until the boot is verified, the time to boot, the
#   serial console's tail and a screenshot; then everything is cleaned up.
# KEEP=1 leaves it running and says how to stop it.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "libvirtd and virtlogd (started if not running; libvirt's default NAT network is never started)"
./scripts/start-libvirt.sh

step "the test image (built once from Debian packages, cached in .cache/test-image)"
IMG="$(images/build-test-image.sh .cache/test-image)"
echo "$IMG"

DATA="$(mktemp -d /tmp/restored-demo.XXXXXX)"
chmod 755 "$DATA"
GRPC=127.0.0.1:17443 HTTP=127.0.0.1:17080 RAFT=127.0.0.1:17300
SERVER_PID="" RESTORE=""
cleanup() {
	if [ "${KEEP:-}" = 1 ]; then
		cat <<MSG

KEEP=1: left running. restored --dev pid $SERVER_PID (with its agent), data in $DATA.
  export RESTORED_ADDR=$GRPC RESTORED_CA_CERT="$DATA/server/tls/ca.pem" RESTORED_TOKEN=\$(cat $DATA/server/bootstrap-token)
  bin/restorectl restore list
  bin/restorectl restore console $RESTORE     # a browser console URL (opens once, within 60 s)
Stop with: bin/restorectl restore delete $RESTORE; kill $SERVER_PID; rm -rf $DATA
MSG
		return
	fi
	if [ -n "$RESTORE" ]; then
		./bin/restorectl restore delete "$RESTORE" >/dev/null 2>&1 || true
		for _ in $(seq 1 60); do
			./bin/restorectl restore get "$RESTORE" -o json 2>/dev/null | grep -q '"RESTORE_STATE_DESTROYED"' && break
			sleep 0.5
		done
	fi
	[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
	rm -rf "$DATA"
	echo "demo: cleaned up (restore destroyed, restored and its agent stopped, $DATA removed)"
}
trap cleanup EXIT

step "a repository with one recovery point: demo/web-01/rp-demo (the test image)"
RP="$DATA/repository/demo/web-01/rp-demo"
mkdir -p "$RP" && chmod -R 755 "$DATA/repository"
cp --sparse=always "$IMG" "$RP/disk0.raw" && chmod 644 "$RP/disk0.raw"
cat > "$RP/manifest.json" <<JSON
{"id":"rp-demo","tenant":"demo","asset":"web-01","created_at":"$(date -u +%Y-%m-%dT%H:%M:%SZ)","firmware":"bios","os":"linux",
 "disks":[{"name":"disk0","file":"disk0.raw","format":"raw","virtual_size":$(stat -c %s "$RP/disk0.raw")}]}
JSON
sha256sum "$RP/disk0.raw" > "$DATA/rp.sha256"
cat "$RP/manifest.json"

step "restored --dev: one server with an embedded agent on the local libvirt (gRPC $GRPC, REST https://$HTTP, TLS from its own CA)"
./bin/restored --dev --data-dir "$DATA/server" --grpc-addr "$GRPC" --http-addr "$HTTP" --raft-addr "$RAFT" \
	--dev-repository "$DATA/repository" --dev-host-id demo-host >"$DATA/restored.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
	[ -s "$DATA/server/bootstrap-token" ] && curl -fs --cacert "$DATA/server/tls/ca.pem" "https://$HTTP/readyz" >/dev/null 2>&1 && break
	kill -0 "$SERVER_PID" 2>/dev/null || { cat "$DATA/restored.log"; exit 1; }
	sleep 0.1
done
export RESTORED_ADDR=$GRPC RESTORED_CA_CERT="$DATA/server/tls/ca.pem"
RESTORED_TOKEN="$(cat "$DATA/server/bootstrap-token")"
export RESTORED_TOKEN

step "a demo tenant and a partner token: restorectl tenant create demo; restorectl token create"
./bin/restorectl tenant create demo --display-name "Demo MSP"
PARTNER="$(./bin/restorectl token create --tenant demo --role partner -o json | sed -n 's/.*"secret": "\(.*\)".*/\1/p')"

step "waiting for the embedded agent to report rp-demo (it probes KVM, falls back to TCG and says why)"
for _ in $(seq 1 300); do
	./bin/restorectl --token "$PARTNER" recovery-point get rp-demo -o json 2>/dev/null | grep -q '"valid": true' && break
	kill -0 "$SERVER_PID" 2>/dev/null || { cat "$DATA/restored.log"; exit 1; }
	sleep 0.1
done
./bin/restorectl host list
./bin/restorectl host list -o json | sed -n 's/.*"accelerator_note": "\(.*\)".*/accelerator: \1/p'

step "restorectl restore create --recovery-point rp-demo --mode virtualize (as the partner)"
RESTORE="$(./bin/restorectl --token "$PARTNER" restore create --recovery-point rp-demo --mode virtualize --memory-mib 128 --ttl 30m -o json \
	| sed -n 's/^  "id": "\(.*\)",/\1/p')"
echo "restore $RESTORE"
last=""
for _ in $(seq 1 600); do
	json="$(./bin/restorectl restore get "$RESTORE" -o json)"
	state="$(echo "$json" | sed -n 's/.*"state": "RESTORE_STATE_\(.*\)",/\1/p')"
	reason="$(echo "$json" | sed -n 's/.*"state_reason": "\(.*\)",/\1/p')"
	if [ "$state" != "$last" ]; then printf '  %s  %-10s %s\n' "$(date +%T)" "$state" "$reason"; last="$state"; fi
	case "$state" in RUNNING|FAILED) break ;; esac
	sleep 0.25
done
[ "$state" = RUNNING ] || { echo "demo: the restore did not reach RUNNING"; tail -20 "$DATA/restored.log"; exit 1; }
echo "$json" | sed -n '/"boot"/,/}/p'

step "the serial console's tail"
tail -n 5 "$DATA/server/agent/restores/$RESTORE/serial.log"

step "a screenshot of the VM's screen"
SHOT="$PWD/.cache/demo-screenshot.png"
virsh -c qemu:///system screenshot "restored-$RESTORE" "$SHOT" >/dev/null && echo "$SHOT"

step "the recovery point is untouched"
sha256sum -c "$DATA/rp.sha256"
