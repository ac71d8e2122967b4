"""The one exception type for bad user input.

Raise ``AnewError`` with a message that names the problem and the fix; the ``anew`` command prints
it as a single line and exits with status 2 instead of showing a traceback.
"""


class AnewError(Exception):
    """An error caused by user input (a flag, a file, a directory), not by a bug in anew."""
