"""Every random draw of a run derives from (seed, stream, epoch, clip index).

Keying draws by clip rather than by position in a stream means a run replays exactly, resumes
from any epoch exactly, and could be sharded across ranks without changing a single number.
"""

from __future__ import annotations

import hashlib

import numpy as np

# Streams keep unrelated draws independent even when their other keys coincide.
STREAM_SHUFFLE = 1
STREAM_CROP = 2
STREAM_WINDOW = 3
STREAM_TORCH = 4  # dropout and other draws inside torch modules, reseeded every epoch
STREAM_INIT = 5
STREAM_FRAME_ORDER = 6
STREAM_CUTMIX = 7
STREAM_METHOD = 8
STREAM_VAL_FRAME_ORDER = 9


def rng_for(seed: int, stream: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, *keys])


def torch_seed(seed: int, stream: int, *keys: int) -> int:
    """A 63-bit integer for ``torch.manual_seed`` derived from the same keys."""
    text = ",".join(str(k) for k in (seed, stream, *keys)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") >> 1
