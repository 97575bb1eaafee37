"""The one exception runtime-ml lets reach the user: a bad value the user can fix."""


class UserInputError(ValueError):
    """A value given by the user that cannot work; the message names it and says the fix."""
