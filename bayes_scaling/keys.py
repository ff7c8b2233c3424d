"""Random keys: every function that samples takes ``seed`` as an int or as a JAX random key.

``as_key(seed)`` gives the raw threefry key (``uint32[2]``, as NumPy) that the samplers fold and split: an int
``s`` gives ``jax.random.PRNGKey(s)`` (computed without a compiled program), a raw key passes through, and a typed
key (``jax.random.key(s)``) is unwrapped. The same int and its ``PRNGKey`` give the same draws. ``seed_record``
is how results store the seed (an int, or the key's two words), so a stored result names what to pass again.

>>> as_key(3).tolist(), as_key(jax.random.PRNGKey(3)).tolist()
([0, 3], [0, 3])
"""

from __future__ import annotations

import jax
import numpy as np

__all__ = ["as_key", "seed_record"]


def as_key(seed) -> np.ndarray:
    """A raw threefry key (``uint32[2]``) from an int seed or a JAX key (raw or typed)."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        s = int(seed)
        if 0 <= s < 2 ** 32:
            return np.array([0, s], dtype=np.uint32)
        return np.asarray(jax.random.PRNGKey(s))
    if isinstance(seed, jax.Array) and jax.dtypes.issubdtype(seed.dtype, jax.dtypes.prng_key):
        seed = jax.random.key_data(seed)
    key = np.asarray(seed)
    if key.shape != (2,) or key.dtype != np.uint32:
        raise ValueError(f"seed must be an int or a JAX random key (jax.random.key(n) or PRNGKey(n)), not {seed!r}")
    return key


def seed_record(seed):
    """The seed as results record it: the int itself, or a key's two 32-bit words as a list."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return int(seed)
    return as_key(seed).tolist()
