"""PvrecError: the one exception core code raises; the CLI turns it into a line and an exit code."""


class PvrecError(Exception):
    """A problem to tell the user in one line, with the exit code the CLI should use, and the
    errno of the failed system call behind it where there is one (None otherwise)."""

    def __init__(self, message: str, exit_code: int = 2, errno: int | None = None):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.errno = errno

    def __str__(self) -> str:
        return self.message
