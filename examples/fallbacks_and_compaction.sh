#!/bin/sh
# A workload that makes the kernel's fallbacks and compaction visible (pvrec record --events):
#   sudo pvrec record --events -o fallbacks/ -- examples/fallbacks_and_compaction.sh
#   pvrec render fallbacks/ -o fallbacks.gif --events --timeline-events
# Page cache fills memory, hugetlb takes every free 2 MiB block (so no whole free page block is
# left), unmovable pipe buffers must then fall back into movable blocks (claiming or polluting
# them), hugetlb lets go, and `compact_memory` runs its scanners over every zone.
# vm.nr_hugepages is restored on exit. PVREC (default pvrec) is the pvrec to mark with.
set -e
PVREC=${PVREC:-pvrec}
CACHE=${CACHE:-/tmp/pvrec-fallbacks-cache.bin}
orig=$(cat /proc/sys/vm/nr_hugepages)
trap 'echo "$orig" > /proc/sys/vm/nr_hugepages' EXIT INT TERM
[ -s "$CACHE" ] || dd if=/dev/urandom of="$CACHE" bs=1M count=2048 status=none
sleep 1
$PVREC mark "page cache: read 2 GiB"
cat "$CACHE" > /dev/null
$PVREC mark "hugetlb takes every free 2 MiB block"
echo 100000 > /proc/sys/vm/nr_hugepages
sleep 1
$PVREC mark "unmovable pipe buffers fall back"
python3 - <<'PY'
import fcntl, os, resource, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
pipes = []
for _ in range(min(1500, hard // 2 - 50)):
    r, w = os.pipe()
    try:
        fcntl.fcntl(w, 1031, 1 << 20)  # F_SETPIPE_SZ: 1 MiB of unmovable pipe buffers
    except OSError:
        pass
    os.set_blocking(w, False)
    try:
        while True:
            os.write(w, b"x" * 4096)
    except BlockingIOError:
        pass
    pipes.append((r, w))
time.sleep(1.5)
PY
$PVREC mark "hugetlb released"
echo "$orig" > /proc/sys/vm/nr_hugepages
sleep 1
$PVREC mark "echo 1 > compact_memory"
echo 1 > /proc/sys/vm/compact_memory
sleep 2
