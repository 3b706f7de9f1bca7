"""What a number in rule data may be: finite, within a magnitude, with few decimal places."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from hipscreen._limits import MAX_NUMBER_MAGNITUDE, MAX_THRESHOLD_DECIMALS


def number_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a threshold (or a number in a condition), or None when it can."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"needs a number (got {value!r})"
    if isinstance(value, float) and not math.isfinite(value):
        return f"needs a finite number (got {value})"
    if not -MAX_NUMBER_MAGNITUDE <= value <= MAX_NUMBER_MAGNITUDE:
        shown = f"{value:.6g}" if isinstance(value, float) else _digits(value)
        bound = f"{MAX_NUMBER_MAGNITUDE:,}"
        return f"needs a number between -{bound} and {bound} (got {shown})"
    if isinstance(value, float):
        exponent = Decimal(repr(value)).as_tuple().exponent
        assert isinstance(exponent, int)  # finite
        if -exponent > MAX_THRESHOLD_DECIMALS:
            return (
                f"may have at most {MAX_THRESHOLD_DECIMALS} decimal places (got {value!r}); "
                "form values are compared exactly against thresholds of this precision"
            )
    return None


def _digits(value: int) -> str:
    if value.bit_length() > 10_000:  # str() refuses integers over 4,300 digits
        return "an integer of thousands of digits"
    return f"an integer of {len(str(abs(value)))} digits"
