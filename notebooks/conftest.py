"""nbval runs the tutorials offline: the fake LLM, whatever API keys the environment holds (kernels inherit this)."""

from __future__ import annotations

import os

os.environ["MINIAGENTS_NB_LLM"] = "fake"

if "MINIAGENTS_NB_RECORD" not in os.environ:  # the tutorials' runs go to a temporary store, not into the repository
    import tempfile

    os.environ["MINIAGENTS_NB_RECORD"] = os.path.join(
        tempfile.mkdtemp(prefix="miniagents-nb-nbval-runs-"), "runs.sqlite"
    )
