#!/usr/bin/env bash
# Builds the image from the real Dockerfile and runs the service from it, end to end, on a machine
# without a Docker engine or a container registry:
#
#   1. a base with the layout of python:3.11-slim, from Debian's packages: debootstrap (bookworm,
#      whose Python is 3.11), a venv at /usr/local, imported with `podman import`;
#   2. `podman build --isolation chroot` of ./Dockerfile with that base as BASE_IMAGE; pip inside
#      the build gets this host's pip settings (index, certificates, constraints), read from
#      `pip config list` when the script runs;
#   3. the image's filesystem (`podman create` + `podman mount`) bound read-only, with only the Helm
#      chart's writable paths writable: a tmpfs at /tmp and one at /var/cache/numba, seeded as the
#      chart's init container does (`cp -a` of the kernels baked into the image); `driftwire run`
#      in it as uid 10001, against the embedded broker on a loopback port;
#   4. time to /readyz, events with a mean shift produced to the predictions topic, the alerts
#      topic read until a drift alert comes, SIGTERM, exit code;
#   5. a summary (key=value lines after "== summary ==").
#
# Needs root, podman, debootstrap, and a Python on the host with driftwire installed (the broker,
# the producer and the alert reader run there): $DRIFTWIRE_HOST_PYTHON, else the repository's
# .venv/bin/python, else python3. `podman run` is not used: crun cannot run containers on some
# cgroup setups, which the chroot isolation of `podman build` and a plain chroot do not need.
#
# Usage: deploy/image/verify.sh [--fresh-base] [--keep-image] [--logs DIR]
#   --fresh-base  rebuild the Debian base even if the image localhost/driftwire-base exists
#   --keep-image  keep the built image localhost/driftwire:verify (removed at exit otherwise)
#   --logs DIR    copy the logs (debootstrap, build, broker, service) to DIR at exit
# Exit status 0 when the image built, the service got ready, alerted on the drift and exited 0.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BASE_IMAGE_TAG=localhost/driftwire-base:bookworm-python3.11
IMAGE_TAG=localhost/driftwire:verify
SUITE=bookworm
UID_GID=10001:10001
FRESH_BASE=0
KEEP_IMAGE=0
LOGS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --fresh-base) FRESH_BASE=1 ;;
    --keep-image) KEEP_IMAGE=1 ;;
    --logs) LOGS=${2:?--logs needs a directory}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

# Bounds, in seconds, of every step that waits.
DEBOOTSTRAP_TIMEOUT=${DEBOOTSTRAP_TIMEOUT:-900}
BUILD_TIMEOUT=${BUILD_TIMEOUT:-1800}
READY_TIMEOUT=${READY_TIMEOUT:-120}
ALERT_TIMEOUT=${ALERT_TIMEOUT:-120}
STOP_TIMEOUT=${STOP_TIMEOUT:-30}

SCRIPT_START=$(date +%s.%N)
elapsed() { awk -v now="$(date +%s.%N)" -v t0="$1" 'BEGIN {printf "%.1f", now - t0}'; }
log() { printf '[verify %6ss] %s\n' "$(elapsed "$SCRIPT_START")" "$*"; }
die() { log "FAILED: $*"; exit 1; }
mb() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1e6}'; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, podman mount, chroot)"
for tool in podman debootstrap chroot findmnt; do
  command -v "$tool" > /dev/null || die "$tool is not installed (Debian: apt-get install podman debootstrap)"
done
HOST_PY=${DRIFTWIRE_HOST_PYTHON:-}
if [ -z "$HOST_PY" ]; then
  if [ -x "$REPO/.venv/bin/python" ]; then HOST_PY=$REPO/.venv/bin/python; else HOST_PY=$(command -v python3); fi
fi
"$HOST_PY" -c 'import driftwire.stream.broker, confluent_kafka' 2> /dev/null \
  || die "$HOST_PY cannot import driftwire and confluent_kafka (set DRIFTWIRE_HOST_PYTHON)"

WORK=$(mktemp -d /var/tmp/driftwire-verify.XXXXXX)
# Host-side processes run from here, so nothing (numba's cache included) is written into the repository.
cd "$WORK"
export NUMBA_CACHE_DIR=$WORK/host-numba-cache
ROOT=$WORK/root
CTR=""
SVC_PID=""
BROKER_PID=""
STEP_PID=""

# A long step, bounded, in the background: a signal to this script is handled while it waits
# (bash runs traps only between foreground commands), and the trap stops the step.
bounded() {
  local seconds=$1 log=$2 rc=0
  shift 2
  timeout "$seconds" "$@" > "$log" 2>&1 &
  STEP_PID=$!
  wait "$STEP_PID" || rc=$?
  STEP_PID=""
  [ "$rc" != 124 ] || echo "timed out after $seconds s" >> "$log"
  return "$rc"
}

cleanup() {
  local rc=$?
  set +e
  if [ -n "$STEP_PID" ] && kill -0 "$STEP_PID" 2> /dev/null; then
    kill -TERM "$STEP_PID"
    for _ in $(seq 300); do kill -0 "$STEP_PID" 2> /dev/null || break; sleep 0.1; done
    kill -KILL "$STEP_PID" 2> /dev/null
  fi
  if [ -n "$SVC_PID" ] && kill -0 "$SVC_PID" 2> /dev/null; then
    kill -KILL "$SVC_PID" 2> /dev/null; wait "$SVC_PID" 2> /dev/null
  fi
  # Every mount under the work directory, deepest first (also what an interrupted debootstrap left).
  findmnt -rno TARGET | grep -F "$WORK/" | sort -r | while read -r target; do
    umount "$target" 2> /dev/null || umount -l "$target"
  done
  if [ -n "$CTR" ]; then
    podman umount "$CTR" > /dev/null 2>&1
    podman rm -f "$CTR" > /dev/null 2>&1
  fi
  if [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2> /dev/null; then
    kill -TERM "$BROKER_PID"
    for _ in $(seq 50); do kill -0 "$BROKER_PID" 2> /dev/null || break; sleep 0.1; done
    kill -KILL "$BROKER_PID" 2> /dev/null
    wait "$BROKER_PID" 2> /dev/null
  fi
  if [ "$KEEP_IMAGE" = 0 ]; then podman rmi -f "$IMAGE_TAG" > /dev/null 2>&1; fi
  if [ -n "$LOGS" ]; then mkdir -p "$LOGS" && cp "$WORK"/*.log "$LOGS"/ 2> /dev/null; fi
  cd /
  if findmnt -rno TARGET | grep -qF "$WORK/"; then
    echo "left $WORK in place: something is still mounted under it" >&2
  else
    rm -rf --one-file-system "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() { "$HOST_PY" -c 'from driftwire.stream.broker import free_port; print(free_port())'; }

# ---------------------------------------------------------------------------------------------
# 1. The base image: Debian bookworm's Python 3.11 in a venv at /usr/local, like python:3.11-slim.
if [ "$FRESH_BASE" = 1 ] || ! podman image exists "$BASE_IMAGE_TAG"; then
  # The host's own Debian mirror (and apt proxy, if any).
  MIRROR=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(TARGET_OF)' 2> /dev/null \
    | awk -v s="$SUITE" '$2 == s && $3 == "deb" {print $1; exit}')
  proxy=$(apt-config dump Acquire::http::Proxy 2> /dev/null | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p')
  [ -n "$proxy" ] && export http_proxy=$proxy
  log "base: debootstrap $SUITE from ${MIRROR:-the default mirror of debootstrap}"
  started=$(date +%s.%N)
  bounded "$DEBOOTSTRAP_TIMEOUT" "$WORK/debootstrap.log" \
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$SUITE" "$WORK/base" ${MIRROR:+"$MIRROR"} \
    || { tail -20 "$WORK/debootstrap.log"; die "debootstrap"; }
  chroot "$WORK/base" python3 -m venv /usr/local
  # Slim: no package lists or caches, documentation but the copyright files, manuals or locales.
  rm -rf "$WORK"/base/var/lib/apt/lists/* "$WORK"/base/var/cache/apt/* "$WORK"/base/var/log/* \
    "$WORK"/base/usr/share/man/* "$WORK"/base/usr/share/locale/* "$WORK"/base/usr/share/info/*
  find "$WORK/base/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$WORK/base/usr/share/doc" -mindepth 1 -type d -empty -delete
  old_base=$(podman image inspect --format '{{.Id}}' "$BASE_IMAGE_TAG" 2> /dev/null || true)
  tar -C "$WORK/base" --numeric-owner -c . | podman import \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$BASE_IMAGE_TAG" > "$WORK/import.log" 2>&1 \
    || { cat "$WORK/import.log"; die "podman import"; }
  rm -rf --one-file-system "$WORK/base"
  [ -z "$old_base" ] || podman rmi "$old_base" > /dev/null 2>&1 || true   # the base it replaced, if unused
  log "base: built in $(elapsed "$started") s"
else
  log "base: reusing $BASE_IMAGE_TAG (--fresh-base rebuilds it)"
fi
BASE_BYTES=$(podman image inspect --format '{{.Size}}' "$BASE_IMAGE_TAG")
log "base: $BASE_IMAGE_TAG, $(mb "$BASE_BYTES") MB"

# ---------------------------------------------------------------------------------------------
# 2. pip inside the build uses this host's pip settings: `pip config list` (files and PIP_*
#    variables) written as pip's user config, /root/.config/pip/pip.conf, and the local files it
#    names (certificates, constraints, local indexes, wheel directories) mounted read-only under
#    /root/.pip-host/, their paths rewritten. All of it lies under /root, root's home in any base,
#    itself a volume of the build: the mount point of a volume made in the image's own
#    directories would stay behind in the image, empty. A local index's pages may link beside it
#    (../../files): its parent directory is mounted.
mkdir -p "$WORK/build-home/.config/pip"
"$HOST_PY" - "$WORK/build-home/.config/pip/pip.conf" "$WORK/build-mounts" <<'EOF'
import ast, configparser, os, subprocess, sys
from urllib.parse import urlparse

out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                     check=True).stdout
sections, env = {}, {}
for line in out.splitlines():
    key, _, value = line.partition("=")
    section, _, name = key.rpartition(".")
    (env if section == ":env:" else sections.setdefault(section, {}))[name] = ast.literal_eval(value)
sections.setdefault("global", {}).update(env)   # the environment wins, as it does for pip
for values in sections.values():
    values.update({k: v for k, v in env.items() if k in values})

mounts = {}   # host path -> its path in the build

def in_build(path):
    return mounts.setdefault(path, f"/root/.pip-host/{len(mounts)}")

for values in sections.values():
    for name, value in values.items():
        tokens = []
        for token in value.split():
            url = token.startswith("file:")
            path = urlparse(token).path if url else token
            if path.startswith("/") and os.path.exists(path):
                if name in ("index-url", "extra-index-url"):
                    parent, leaf = os.path.split(path.rstrip("/"))
                    path = f"{in_build(parent)}/{leaf}"
                else:
                    path = in_build(path)
                token = f"file://{path}" if url else path
            tokens.append(token)
        values[name] = " ".join(tokens)
conf = configparser.ConfigParser(interpolation=None)
conf.read_dict(sections)
with open(sys.argv[1], "w") as f:
    conf.write(f)
with open(sys.argv[2], "w") as f:
    f.write("".join(f"{host}:{build}:ro\n" for host, build in mounts.items()))
EOF
# /root first: the other mount points are made inside it, outside the image.
BUILD_VOLUMES=(-v "$WORK/build-home:/root")
while read -r volume; do BUILD_VOLUMES+=(-v "$volume"); done < "$WORK/build-mounts"
log "build: pip settings of the host: $(grep -c = "$WORK/build-home/.config/pip/pip.conf") in pip.conf; mounted: $(cut -d: -f1 "$WORK/build-mounts" | paste -sd' ')"

# ---------------------------------------------------------------------------------------------
# 3. The real Dockerfile, with the Debian base as BASE_IMAGE, every step run (no cached layers).
log "build: podman build --isolation chroot --build-arg BASE_IMAGE=$BASE_IMAGE_TAG ($REPO/Dockerfile)"
started=$(date +%s.%N)
if ! bounded "$BUILD_TIMEOUT" "$WORK/build.log" \
    podman build --isolation chroot --format docker --pull=never --no-cache \
    --build-arg "BASE_IMAGE=$BASE_IMAGE_TAG" "${BUILD_VOLUMES[@]}" \
    -f "$REPO/Dockerfile" -t "$IMAGE_TAG" "$REPO"; then
  tail -30 "$WORK/build.log"
  die "podman build"
fi
BUILD_SECONDS=$(elapsed "$started")
WARM_UP_SECONDS=$(sed -n 's/.*numba kernels compiled or loaded in \([0-9.]*\) s.*/\1/p' "$WORK/build.log" | tail -1)
IMAGE_BYTES=$(podman image inspect --format '{{.Size}}' "$IMAGE_TAG")
IMAGE_MB=$(mb "$IMAGE_BYTES")
log "build: done in $BUILD_SECONDS s (driftwire warm-up: ${WARM_UP_SECONDS:-?} s); image $IMAGE_TAG: $IMAGE_MB MB"
log "build: user $(podman image inspect --format '{{.Config.User}}' "$IMAGE_TAG"), entrypoint $(podman image inspect --format '{{json .Config.Entrypoint}} {{json .Config.Cmd}}' "$IMAGE_TAG")"

# ---------------------------------------------------------------------------------------------
# 4. The image's filesystem, read-only, with the chart's writable volumes.
CTR=$(podman create --name "driftwire-verify-$$" "$IMAGE_TAG")
MNT=$(podman mount "$CTR")
# Mount points of the chart's volumes, in the container's own layer, as a container runtime makes them.
mkdir -p "$MNT/var/cache/numba" "$MNT/tmp" "$MNT/etc/driftwire"
touch "$MNT/etc/driftwire/config.yaml"
mkdir -p "$ROOT"
mount --bind "$MNT" "$ROOT"
mount -o remount,bind,ro "$ROOT"
mount -t proc proc "$ROOT/proc"
mount --bind /dev "$ROOT/dev"
# emptyDir volumes: /tmp (tmpSizeLimit 64Mi) and the numba cache (numbaCache.sizeLimit 256Mi).
mount -t tmpfs -o size=64m,mode=1777 tmpfs "$ROOT/tmp"
mount -t tmpfs -o size=256m,mode=0777 tmpfs "$ROOT/var/cache/numba"
# The chart's detectorConfig, a ConfigMap mounted read-only at /etc/driftwire/config.yaml: here the
# consumer settings that make group joins on the embedded broker take seconds (FAST_GROUP_CONFIG).
"$HOST_PY" - > "$WORK/config.yaml" <<'EOF'
import yaml
from driftwire.stream.broker import FAST_GROUP_CONFIG
print(yaml.safe_dump({"consumer": {k: str(v) for k, v in FAST_GROUP_CONFIG.items()}}), end="")
EOF
mount --bind "$WORK/config.yaml" "$ROOT/etc/driftwire/config.yaml"
mount -o remount,bind,ro "$ROOT/etc/driftwire/config.yaml"
if chroot "$ROOT" touch /probe 2> "$WORK/probe.err"; then die "the root file system is writable"; fi
log "run: root file system read-only: $(sed 's/^touch: //' "$WORK/probe.err")"

IMAGE_CACHE=$(podman image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$IMAGE_TAG" \
  | sed -n 's/^NUMBA_CACHE_DIR=//p')
# The chart's init container (helm/driftwire/templates/deployment.yaml, seed-numba-cache), as uid 10001.
chroot --userspec="$UID_GID" "$ROOT" sh -c "cp -a $IMAGE_CACHE/. /var/cache/numba/ 2>/dev/null || true"
log "run: numba cache seeded from $IMAGE_CACHE: $(find "$ROOT/var/cache/numba" -name '*.nbi' | wc -l) index files, $(du -sh "$ROOT/var/cache/numba" | cut -f1)"

BROKER_PORT=$(free_port)
METRICS_PORT=$(free_port)
"$HOST_PY" -m driftwire.stream.cli broker --host 127.0.0.1 --port "$BROKER_PORT" > "$WORK/broker.log" 2>&1 &
BROKER_PID=$!
for _ in $(seq 300); do grep -q DRIFTWIRE_BOOTSTRAP_SERVERS "$WORK/broker.log" && break
  kill -0 "$BROKER_PID" 2> /dev/null || { cat "$WORK/broker.log"; die "broker exited"; }; sleep 0.1; done
grep -q DRIFTWIRE_BOOTSTRAP_SERVERS "$WORK/broker.log" || die "broker not serving after 30 s"
BOOTSTRAP=127.0.0.1:$BROKER_PORT
log "broker: embedded broker (Tansu) on $BOOTSTRAP"

# The container's environment: the image's, HOME from its passwd (as a runtime sets it), then the
# chart's (helm/driftwire/templates/deployment.yaml, with the default values).
HOME_DIR=$(awk -F: -v uid="${UID_GID%%:*}" '$3 == uid {print $6}' "$ROOT/etc/passwd")
mapfile -t SVC_ENV < <(podman image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$IMAGE_TAG" | sed '/^$/d')
SVC_ENV+=(
  "HOME=${HOME_DIR:-/}"
  "DRIFTWIRE_BOOTSTRAP_SERVERS=$BOOTSTRAP"
  "DRIFTWIRE_GROUP_ID=driftwire"
  "DRIFTWIRE_PREDICTIONS_TOPIC=predictions"
  "DRIFTWIRE_FEATURES_TOPIC=features"
  "DRIFTWIRE_LABELS_TOPIC=labels"
  "DRIFTWIRE_ALERTS_TOPIC=drift-alerts"
  "DRIFTWIRE_RETRAIN_TOPIC=retrain-requests"
  "DRIFTWIRE_DLQ_TOPIC=drift-dlq"
  "DRIFTWIRE_STATE_TOPIC=driftwire-state"
  "DRIFTWIRE_REFERENCES_TOPIC=drift-references"
  "DRIFTWIRE_AUTO_CREATE_TOPICS=true"
  "DRIFTWIRE_METRICS_PORT=$METRICS_PORT"
  # In a pod it listens on the pod's address; here only on loopback.
  "DRIFTWIRE_METRICS_HOST=127.0.0.1"
  "DRIFTWIRE_LOG_LEVEL=INFO"
  "NUMBA_CACHE_DIR=/var/cache/numba"
  "TMPDIR=/tmp"
)
log "run: driftwire run as uid $UID_GID in the read-only root (metrics on 127.0.0.1:$METRICS_PORT)"
started=$(date +%s.%N)
env -i "${SVC_ENV[@]}" "$(command -v chroot)" --userspec="$UID_GID" "$ROOT" \
  driftwire run --config /etc/driftwire/config.yaml \
  > "$WORK/service.log" 2>&1 &
SVC_PID=$!

# Seconds from the start to the first 200 of /healthz (metrics served: kernels loaded, topics
# checked) and of /readyz (connected, partitions assigned).
read -r HEALTHY_SECONDS READY_SECONDS < <("$HOST_PY" - "$METRICS_PORT" "$SVC_PID" "$READY_TIMEOUT" "$started" <<'EOF'
import os, sys, time, urllib.request
port, pid, timeout, started = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
deadline, healthy = time.monotonic() + timeout, None

def ok(path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False

while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("the service exited before it was ready")
    if healthy is None and ok("/healthz"):
        healthy = time.time() - started
    if healthy is not None and ok("/readyz"):
        print(f"{healthy:.1f} {time.time() - started:.1f}")
        sys.exit(0)
    time.sleep(0.1)
sys.exit(f"not ready within {timeout:.0f} s")
EOF
) || true
[ -n "$READY_SECONDS" ] || { tail -20 "$WORK/service.log"; die "the service did not get ready"; }
log "run: /healthz 200 after $HEALTHY_SECONDS s, ready (/readyz 200) after $READY_SECONDS s"
status=$(awk '/^(Uid|Gid):/ {printf "%s %s ", $1, $2}' "/proc/$SVC_PID/status")
log "run: process $SVC_PID: ${status% }, root $(readlink "/proc/$SVC_PID/root"), cwd $(readlink "/proc/$SVC_PID/cwd")"
case "$status" in "Uid: 10001 Gid: 10001 ") ;; *) die "the service does not run as $UID_GID";; esac

# 5. Events with a mean shift: fraud-detector's amount moves by 3 std from its 4000th event.
log "drift: producing 30000 events to 'predictions', fraud-detector/amount +3 std from its event 4000"
env DRIFTWIRE_PREDICTIONS_TOPIC=predictions timeout 120 "$HOST_PY" -m driftwire.stream.cli simulate \
  --bootstrap-servers "$BOOTSTRAP" --events 30000 --rate 0 --seed 7 --drift fraud-detector:amount@4000:3 \
  2>&1 | sed 's/^/  /' || die "producing the events"
started_alert=$(date +%s.%N)
ALERT=$(timeout $((ALERT_TIMEOUT + 15)) "$HOST_PY" - "$BOOTSTRAP" drift-alerts "$ALERT_TIMEOUT" <<'EOF'
import json, sys, time, uuid
from confluent_kafka import Consumer
from driftwire.stream.broker import FAST_GROUP_CONFIG

bootstrap, topic, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"verify-{uuid.uuid4().hex[:8]}",
                     "auto.offset.reset": "earliest", "enable.auto.commit": False, **FAST_GROUP_CONFIG})
consumer.subscribe([topic])
deadline = time.monotonic() + timeout
try:
    while time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        a = json.loads(msg.value())
        line = f"{a['model']}/{a['signal']} {a['kind']} {a['detector']} {a['severity']}"
        print(f"  alert: {line}", file=sys.stderr)
        if (a["model"], a["signal"], a["kind"]) == ("fraud-detector", "amount", "data_drift"):
            print(line)
            sys.exit(0)
    sys.exit(f"no drift alert on fraud-detector/amount within {timeout:.0f} s")
finally:
    consumer.close()
EOF
) || { tail -20 "$WORK/service.log"; die "no drift alert"; }
log "drift: alert received after $(elapsed "$started_alert") s: $ALERT"

METRICS=$("$HOST_PY" - "$METRICS_PORT" <<'EOF'
import sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
def total(name):
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith(name + "{"))
print(f"events consumed {total('driftwire_events_total'):.0f}, alerts published {total('driftwire_drift_alerts_total'):.0f}")
EOF
) || METRICS="(metrics not read)"
log "run: /metrics: $METRICS"

# 6. SIGTERM: the service finishes its batch, commits and exits 0.
log "stop: SIGTERM to $SVC_PID"
started=$(date +%s.%N)
kill -TERM "$SVC_PID"
for _ in $(seq $((STOP_TIMEOUT * 10))); do kill -0 "$SVC_PID" 2> /dev/null || break; sleep 0.1; done
if kill -0 "$SVC_PID" 2> /dev/null; then kill -KILL "$SVC_PID"; log "stop: still running after $STOP_TIMEOUT s, killed"; fi
EXIT_CODE=0
wait "$SVC_PID" || EXIT_CODE=$?
SVC_PID=""
STOP_SECONDS=$(elapsed "$started")
log "stop: exit code $EXIT_CODE after $STOP_SECONDS s; last lines of its log:"
tail -5 "$WORK/service.log" | sed 's/^/  /'
if grep -q Traceback "$WORK/service.log"; then log "run: the service's log has a traceback:"; grep -A20 -m1 Traceback "$WORK/service.log"; fi

RESULT=PASS
[ "$EXIT_CODE" = 0 ] || RESULT=FAIL
echo "== summary =="
echo "base_image=$BASE_IMAGE_TAG"
echo "base_size_mb=$(mb "$BASE_BYTES")"
echo "image_size_mb=$IMAGE_MB"
echo "build_seconds=$BUILD_SECONDS"
echo "warm_up_seconds=${WARM_UP_SECONDS:-unknown}"
echo "read_only_root=yes"
echo "uid=${UID_GID%%:*}"
echo "healthy_seconds=$HEALTHY_SECONDS"
echo "ready_seconds=$READY_SECONDS"
echo "alert=$ALERT"
echo "exit_code=$EXIT_CODE"
echo "stop_seconds=$STOP_SECONDS"
echo "total_seconds=$(elapsed "$SCRIPT_START")"
echo "result=$RESULT"
[ "$RESULT" = PASS ]
