"""Layer 0: what every layer may use and none owns.

Errors with their exit codes, keyed randomness, atomic files, the cache paths, the artifact store
that methods and trainers keep state in, and mean ± sample std over seeds.
"""
