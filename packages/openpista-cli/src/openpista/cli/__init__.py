"""openpista cli."""
