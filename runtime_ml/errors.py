"""The exceptions runtime-ml lets reach the user: a bad value the user can fix.

Each is raised where stock hyperopt would also fail, keeps the type hyperopt raises there (a
subclass of it) and starts with hyperopt's own message, then adds the fix.
"""


class UserInputError(ValueError):
    """A value given by the user that cannot work; the message names it and says the fix.

    hyperopt raises a plain Exception for these (a ValueError is one)."""


class UserInputTypeError(UserInputError, TypeError):
    """A value of a type hyperopt cannot use, where hyperopt itself raises TypeError."""


def with_advice(stock_message: str, advice: str) -> str:
    """hyperopt's message first, runtime-ml's fix after it."""
    return f"{stock_message} (runtime-ml: {advice})"
