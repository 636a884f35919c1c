"""Everything that runs on the recorded machine: reads kpageflags, runs the workload, samples (numpy only)."""
