"""openpista channels."""
