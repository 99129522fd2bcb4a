"""openpista core: the vocabulary every openpista library speaks, and the runtime built on it.

Importing this package is cheap on purpose: the heavy parts (SQLAlchemy, YAML, croniter)
are imported by the modules that need them, when they need them.
"""

__version__ = "0.1.0"
