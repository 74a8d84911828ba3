"""The one exception type for bad user input.

Library code raises :class:`UserError` with a message that says what was wrong and what to do;
the CLI prints it on one line and exits with status 2; the dashboard shows it on the page.
"""


class UserError(ValueError):
    """Bad input from a user: the message names the problem and the fix."""
