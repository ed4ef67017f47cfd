"""Seeds: every seed topcal takes (generation, flattening, training, sampling) is a whole number 0..2**32-1,
what numpy's and TensorFlow's generators accept; anything else is refused before any work."""

from __future__ import annotations

from topcal.errors import ConfigError

SEED_MAX = 2**32 - 1


def check_seed(seed, name: str = "seed") -> int:
    """``seed`` as an int, or ConfigError naming ``name`` when it is not a whole number in 0..2**32-1."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        try:
            whole = int(seed)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{name}: {seed!r} must be a whole number 0..{SEED_MAX}") from None
        if whole != seed:
            raise ConfigError(f"{name}: {seed!r} must be a whole number 0..{SEED_MAX}")
        seed = whole
    if not 0 <= seed <= SEED_MAX:
        raise ConfigError(f"{name}: {seed} must be in 0..{SEED_MAX}")
    return seed
