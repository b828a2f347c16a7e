"""Shared test settings: on CI (CI=true) hypothesis draws the same examples on every run, so a
submission's result does not depend on a lucky draw; locally it explores new ones each time."""
import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")
