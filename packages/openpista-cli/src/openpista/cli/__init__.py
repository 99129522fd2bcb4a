"""The `openpista` command: composes the other openpista libraries through entry points."""

__version__ = "0.1.0"
