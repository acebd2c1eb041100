"""Fixtures for the pre-packaged agents' tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TextIO

import pytest

from .helpers import WatchedBuffer


@pytest.fixture
def watched_buffer() -> WatchedBuffer:
    return WatchedBuffer()


@pytest.fixture
def pipe() -> Iterator[tuple[TextIO, TextIO]]:
    """A real OS pipe as text streams (reader, writer): reading it blocks, like a console."""
    read_fd, write_fd = os.pipe()
    with open(read_fd, encoding="utf-8") as reader, open(write_fd, "w", encoding="utf-8") as writer:
        yield reader, writer
