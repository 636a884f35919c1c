#!/usr/bin/env bash
# Flood the page cache with a big file, then drop it.
#
#   sudo examples/pagecache-flood.sh [MiB]
#
# Writes a file of MiB (default 2048) in the system temp directory, reads it back, then
# drops the caches and deletes it.
#
# What you should see: page cache colour pouring into the free memory row after row while
# the file is written (dirty, then written back), staying while it is read, and turning back
# to free in one step at drop_caches.
set -euo pipefail
mib=${1:-2048}
file=$(mktemp)
trap 'rm -f "$file"' EXIT
export file mib
pvrec record --as-root --force --interval 500ms -o pagecache-flood -- bash -c '
    sleep 1
    dd if=/dev/zero of="$file" bs=1M count="$mib" status=none; sync
    cat "$file" > /dev/null; sleep 1
    echo 1 > /proc/sys/vm/drop_caches; sleep 2'
pvrec render pagecache-flood -o pagecache-flood.gif --fps 4 --title "2 GiB file written, read, then drop_caches" --force
echo "wrote pagecache-flood/ pagecache-flood.gif"
