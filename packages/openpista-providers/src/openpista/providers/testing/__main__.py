"""`python -m openpista.providers.testing`: serve a fake provider from a shell."""

from __future__ import annotations

import sys

from openpista.providers.testing.chat_completions import main

sys.exit(main())
