"""The one exception type the stack raises for problems a user can fix."""


class StackError(RuntimeError):
    """A problem with a clear cause and a suggested fix; printed without a traceback."""
