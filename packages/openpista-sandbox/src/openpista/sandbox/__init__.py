"""openpista sandbox."""
