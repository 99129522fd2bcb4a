"""openpista tools."""
