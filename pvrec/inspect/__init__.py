"""page-types compatible text tools: `pvrec stats`, `pvrec list` (and the page-types core they share).

`pagetypes` is the pure, vectorised core (what page-types counts and prints for a flags array),
`source` loads the flags of the live system, a raw dump or a recording frame, and `command`
is the command line. Nothing here imports the render half (start-up time matters).
"""
