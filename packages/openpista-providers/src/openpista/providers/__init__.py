"""openpista providers."""
