"""Compiled console templates shared by every console in the process.

Jinja compiles a template the first time an ``Environment`` loads it (tens of milliseconds for a page with its
base and macros). Each console app has its own environment, so without this every app made for a process (an
embedding app's, each test's) compiled every page again. The cache is keyed by the template's name and file and
checked against its source's checksum, so an edited or overriding template is compiled afresh.
"""

from __future__ import annotations

import threading

from jinja2.bccache import Bucket, BytecodeCache


class ProcessBytecodeCache(BytecodeCache):
    """Jinja bytecode kept in memory for the life of the process."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def load_bytecode(self, bucket: Bucket) -> None:
        """Fill ``bucket`` with the code compiled earlier, if any (Jinja discards it when the source changed)."""
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        """Keep the code Jinja just compiled."""
        with self._lock:
            self._code[bucket.key] = bucket.bytecode_to_string()

    def clear(self) -> None:
        """Forget every compiled template."""
        with self._lock:
            self._code.clear()


#: The one cache every console environment of this process uses.
COMPILED_TEMPLATES = ProcessBytecodeCache()
