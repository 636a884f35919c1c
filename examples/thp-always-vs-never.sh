#!/usr/bin/env bash
# The same kernel build with transparent huge pages always on, then never; side by side.
#
#   sudo examples/thp-always-vs-never.sh /path/to/linux [JOBS]
#
# Sets /sys/kernel/mm/transparent_hugepage/enabled to always, records a build, to never,
# records it again, and restores the setting it found (also on Ctrl-C).
#
# What you should see: on the left (always) the compilers' anonymous memory arrives as whole
# 2 MiB rows of THP colour; on the right (never) as 4 KiB pages of anonymous colour, scattered.
set -euo pipefail
tree=${1:?usage: $0 KERNEL_TREE [JOBS]}
jobs=${2:-$(nproc)}
knob=/sys/kernel/mm/transparent_hugepage/enabled
old=$(sed -E 's/.*\[(.*)\].*/\1/' "$knob")
trap 'echo "$old" > "$knob"' EXIT
for mode in always never; do
    echo "$mode" > "$knob"
    make -s -C "$tree" clean
    make -s -C "$tree" tinyconfig
    sync; echo 3 > /proc/sys/vm/drop_caches
    pvrec record --force --interval 1s -o "thp-$mode" -- make -s -C "$tree" -j"$jobs"
done
pvrec render thp-always thp-never -o thp-always-vs-never.mp4 --force
pvrec render thp-always thp-never -o thp-always-vs-never.gif --force
echo "wrote thp-always/ thp-never/ thp-always-vs-never.mp4 thp-always-vs-never.gif"
