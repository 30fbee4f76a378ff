"""Video sources, clip sampling and the in-memory splits the trainer and the methods read."""
