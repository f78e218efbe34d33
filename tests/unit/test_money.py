"""The one money formatter: one rounding rule for PR bodies, guardrail reasons, the CLI and CRD status."""
import math

import pytest
from finops_operator.money import decimal_string, signed_usd, usd


@pytest.mark.parametrize(("amount", "text"), [
    (1234.5, "$1,234.50"), (-12, "-$12.00"), (0.125, "$0.13"), (-0.125, "-$0.13"), (2.675, "$2.68"),
    (-0.004, "$0.00"), (-0.0, "$0.00"), (1e9, "$1,000,000,000.00"), (math.nan, "n/a"), (math.inf, "n/a"),
])
def test_usd_rounds_half_away_from_zero_and_never_shows_minus_zero(amount, text):
    assert usd(amount) == text


@pytest.mark.parametrize(("amount", "text"), [
    (12, "+$12.00"), (-40.5, "-$40.50"), (0.004, "$0.00"), (-0.004, "$0.00"), (0.005, "+$0.01"),
])
def test_signed_usd(amount, text):
    assert signed_usd(amount) == text


@pytest.mark.parametrize(("amount", "text"), [
    (None, None), (1234.5, "1234.50"), (-0.001, "0.00"), (-12, "-12.00"), (41.335, "41.34"),
    (math.inf, None), (math.nan, None),
])
def test_decimal_string_for_the_crd(amount, text):
    assert decimal_string(amount) == text


def test_all_formats_agree_on_the_cents():
    for amount in (0.005, 0.015, 1.005, 2.675, -3.335, 1234.565):
        cents = decimal_string(amount)
        assert usd(amount).replace("$", "").replace(",", "") == cents
        assert signed_usd(amount).lstrip("+").replace("$", "").replace(",", "") == cents
