#!/usr/bin/env bash
# Reserve hugetlb pages on a freshly compacted system, then on a fragmented one; side by side.
#
#   sudo examples/hugetlb-fragmented-vs-fresh.sh [PAGES]
#
# Fresh: drop caches and compact, then ask for PAGES (default 1024 = 2 GiB) hugetlb pages.
# Fragmented: first fill the page cache with thousands of small files and free every other
# one, then ask again. vm.nr_hugepages is restored at the end (also on Ctrl-C).
#
# What you should see: fresh, the hugetlb colour appears as solid blocks at once; fragmented,
# the kernel has to compact and reclaim first (page cache rows turn free, then hugetlb), it
# takes longer and may get fewer pages (the header's count and the legend's hugetlb MiB).
set -euo pipefail
pages=${1:-1024}
old=$(cat /proc/sys/vm/nr_hugepages)
work=$(mktemp -d)
trap 'echo "$old" > /proc/sys/vm/nr_hugepages; rm -rf "$work"' EXIT
reserve() { echo $((old + pages)) > /proc/sys/vm/nr_hugepages; sleep 3; echo "$old" > /proc/sys/vm/nr_hugepages; sleep 1; }
export -f reserve; export old pages
sync; echo 3 > /proc/sys/vm/drop_caches; echo 1 > /proc/sys/vm/compact_memory
pvrec record --as-root --force --interval 500ms -o hugetlb-fresh -- bash -c reserve
for i in $(seq 1 4000); do head -c 300000 /dev/urandom > "$work/f$i"; done
for i in $(seq 1 2 4000); do rm "$work/f$i"; done
pvrec record --as-root --force --interval 500ms -o hugetlb-fragmented -- bash -c reserve
pvrec render hugetlb-fresh hugetlb-fragmented -o hugetlb-fresh-vs-fragmented.gif --fps 4 --force
echo "wrote hugetlb-fresh/ hugetlb-fragmented/ hugetlb-fresh-vs-fragmented.gif"
