"""nbval runs the tutorials offline: the fake LLM, whatever API keys the environment holds (kernels inherit this)."""

from __future__ import annotations

import os

os.environ["MINIAGENTS_NB_LLM"] = "fake"
