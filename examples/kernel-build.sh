#!/usr/bin/env bash
# Record a kernel build and render it.
#
#   sudo examples/kernel-build.sh /path/to/linux [JOBS] [CONFIG]
#
# Takes an unpacked kernel tree (downloads nothing: e.g. `apt-get download linux-source-6.1`
# and unpack it), runs `make CONFIG` (default tinyconfig) and `make -jJOBS`, sampling every
# second, then renders kernel-build.mp4 and kernel-build.gif.
#
# What you should see: the compiler processes' anonymous memory (and the build's page cache:
# sources read, objects written) spreading over the free memory as the build goes, most of it
# freed again at the end; the free huge-page blocks in the timeline falling and not all coming
# back: the fragmentation a build leaves behind.
set -euo pipefail
tree=${1:?usage: $0 KERNEL_TREE [JOBS] [CONFIG]}
jobs=${2:-$(nproc)}
config=${3:-tinyconfig}
out=${OUT:-kernel-build}
make -s -C "$tree" clean
make -s -C "$tree" "$config"
pvrec record --force --interval 1s -o "$out" -- make -s -C "$tree" -j"$jobs"
pvrec render "$out" -o "$out.mp4" --timeline --force
pvrec render "$out" -o "$out.gif" --timeline --force
echo "wrote $out/ $out.mp4 $out.gif"
