"""The trial protocol the driver and the worker share: the values a trial's objective is called
with and the result hyperopt makes of what it returned (`evaluation`), what an objective's return
value must be (`results`), and how a failed trial travels back to the driver (`outcome`).

Imports only the standard library at load; hyperopt only inside the functions that need it."""
