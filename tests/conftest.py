"""Shared pytest configuration for the miniagents_nb suite.

The suite never talks to a real LLM: the default LLM backend is the offline fake unless the caller set
``MINIAGENTS_NB_LLM`` explicitly. This is set at import time, before any test module imports the package.
"""

import os

os.environ.setdefault("MINIAGENTS_NB_LLM", "fake")

if "MINIAGENTS_NB_RECORD" not in os.environ:
    # `%load_ext miniagents_nb` records runs beside the notebook by default: the suite's kernels and shells (and the
    # kernels they start, which inherit this) record into a temporary directory, never into the repository.
    import tempfile

    os.environ["MINIAGENTS_NB_RECORD"] = os.path.join(
        tempfile.mkdtemp(prefix="miniagents-nb-test-runs-"), "runs.sqlite"
    )
