"""The one exception a user can fix: what every stage raises for bad input or environment, and
what the stages' command wrapper (shell.py) turns into one line on stderr and exit status 2."""

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A problem with the user's input or environment that they can fix."""
