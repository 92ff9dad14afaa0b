"""Suite-wide test settings."""

from __future__ import annotations

from hypothesis import settings

# Fuzz tests draw the same examples on every run: a CI failure can be rerun
# and a green run means the same inputs passed, not a luckier draw.
# (`pytest --hypothesis-profile explore` draws fresh random examples.)
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("ci")
