"""Shared pytest configuration for the miniagents_nb suite.

The suite never talks to a real LLM: the default LLM backend is the offline fake unless the caller set
``MINIAGENTS_NB_LLM`` explicitly. This is set at import time, before any test module imports the package.
"""

import os

os.environ.setdefault("MINIAGENTS_NB_LLM", "fake")
