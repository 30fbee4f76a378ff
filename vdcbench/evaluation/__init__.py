"""Layer 7: the library API: score an archive over nets and seeds, run a baseline end to end,
and the typed result records with their aggregation."""
