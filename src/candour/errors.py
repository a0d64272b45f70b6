"""The one exception type that means "the user can fix this".

Anything raised as a :class:`CandourError` is shown as a single clear line, and the CLI exits
with code 2. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class CandourError(Exception):
    """A problem with input, configuration or state that the person running Candour can fix."""
