"""Checks of the pruning options shared by the pruners (channels, magnitudes, recurrent units)."""

from __future__ import annotations

from glassnet.errors import ConfigError


def check_amount(amount: float) -> float:
    """Raise ``ConfigError`` unless ``0 < amount < 1``; return it as a float."""
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 < amount < 1:
        raise ConfigError(f"the pruning fraction must be in (0, 1), e.g. 0.5. Received: prune={amount!r}")
    return float(amount)


def check_steps(steps: int) -> None:
    """Raise ``ConfigError`` unless ``steps`` (rounds of prune + fine-tune) is a positive integer."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"prune_steps must be a positive integer. Received: prune_steps={steps!r}")
