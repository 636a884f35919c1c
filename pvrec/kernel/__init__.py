"""The only code that opens /proc and /sys: kpageflags-like files, the layout, per-frame counters,
processes and their page maps. The recorder and the live source read the machine through it."""
