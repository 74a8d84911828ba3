"""The one exception type for bad user input.

Library code raises :class:`UserError` with a message that says what was wrong and what to do;
the CLI prints it on one line and exits with status 2; the dashboard shows it on the page.
"""


class UserError(ValueError):
    """Bad input from a user: the message names the problem and the fix."""


def _finite(x, what: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise UserError(f"{what} must be a number, got {x!r}") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise UserError(f"{what} must be a finite number, got {x!r}")
    return v


def positive_number(x, what: str) -> float:
    """``x`` as a float > 0 and finite, else a UserError naming ``what``."""
    v = _finite(x, what)
    if v <= 0:
        raise UserError(f"{what} must be a positive finite number, got {x!r}")
    return v


def nonneg_number(x, what: str) -> float:
    """``x`` as a float >= 0 and finite, else a UserError naming ``what``."""
    v = _finite(x, what)
    if v < 0:
        raise UserError(f"{what} must be a finite number >= 0, got {x!r}")
    return v
