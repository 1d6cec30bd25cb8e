"""Numbers as people read them, one format everywhere: `{{ value|marks }}` for marks (1, 0.5,
2.25: at most two decimals, no trailing zeros, the language's decimal separator) and
`{{ fraction|percent }}` for a share from 0 to 1 (12.5 %, not 12 %)."""

import math
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template
from django.utils import formats
from django.utils.translation import gettext

register = template.Library()

EMPTY = "—"


def _number(value) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    return Decimal(repr(number))


def format_number(value, places: int = 2) -> str:
    """`value` rounded to `places` decimals, without trailing zeros, in the active language's
    format ("2.25", "0.5", "1"; "0,5" in German); "—" for no number."""
    number = _number(value)
    if number is None:
        return EMPTY
    try:
        rounded = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    except InvalidOperation:  # too large to round this way
        rounded = number
    rounded = rounded.normalize()
    if rounded == 0:
        rounded = Decimal(0)
    decimals = max(0, -rounded.as_tuple().exponent)
    if decimals == 0:
        rounded = rounded.quantize(Decimal(1))
    return formats.number_format(rounded, decimal_pos=decimals, use_l10n=True)


@register.filter
def marks(value) -> str:
    """A mark or a number of marks: "1", "0.5", "2.25"."""
    return format_number(value)


@register.filter
def percent(value) -> str:
    """A share from 0 to 1 as a percentage with its decimals: 0.125 → "12.5 %"."""
    number = _number(value)
    if number is None:
        return EMPTY
    # Translators: a percentage; %(number)s is the number, e.g. "12.5 %". Keep the %% sign and the
    # no-break space before it (a literal one: xgettext does not read \u escapes).
    return gettext("%(number)s %%") % {"number": format_number(number * 100)}


@register.filter
def mark_input(value) -> str:
    """A mark as the value of an <input type="number">: "1", "0.5" (always a dot; "" for none)."""
    number = _number(value)
    if number is None:
        return ""
    text = format(number.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP).normalize(), "f")
    return "0" if text in ("-0", "0") else text
