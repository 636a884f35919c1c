"""Everything that runs on the recorded machine (numpy only): one session, its sampling loop, the
workload it runs; pvrec.kernel does the reading."""
