"""The one money formatter: every dollar amount shown to people or written to a CRD goes through here.

Rounding rule (one rule for PR bodies, guardrail reasons, CLI output and CRD status):

* amounts are USD rounded to whole cents, **half away from zero**, applied to the
  float's shortest decimal form (``repr``), so ``0.125`` -> ``0.13`` and
  ``-0.125`` -> ``-0.13`` (no binary surprises such as ``2.675`` -> ``2.67``);
* an amount that rounds to zero has no sign: never ``-$0.00`` or ``-0.00``;
* a value that is not a finite number (NaN, infinity) is shown as ``n/a`` and
  written to a CRD as ``None`` (the field is cleared rather than holding a lie).

    >>> usd(1234.5), usd(-12), signed_usd(12), signed_usd(-0.001), decimal_string(-0.004)
    ('$1,234.50', '-$12.00', '+$12.00', '$0.00', '0.00')
"""
from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
NOT_A_NUMBER = "n/a"


def cents(amount: float | int) -> Decimal | None:
    """``amount`` rounded to cents by the rule above; None when it is not a finite number."""
    value = float(amount)
    if not math.isfinite(value):
        return None
    rounded = Decimal(repr(value)).quantize(CENT, rounding=ROUND_HALF_UP)
    return rounded if rounded != 0 else Decimal("0.00")


def usd(amount: float | int) -> str:
    """'$1,234.50'; negatives with the sign in front: '-$12.00'."""
    value = cents(amount)
    if value is None:
        return NOT_A_NUMBER
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def signed_usd(amount: float | int) -> str:
    """A delta: '+$12.00' / '-$40.50' / '$0.00'."""
    value = cents(amount)
    if value is None:
        return NOT_A_NUMBER
    return f"+${value:,.2f}" if value > 0 else usd(amount)


def decimal_string(amount: float | int | None) -> str | None:
    """The CRD's decimal string: '1234.50', '-12.00'; None for None or a non-finite value."""
    if amount is None:
        return None
    value = cents(amount)
    return None if value is None else f"{value:.2f}"
