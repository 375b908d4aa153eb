"""Returned workbooks are hostile until proven otherwise: pre-checks and a sandboxed parser.

Two layers keep one bad file from taking a collect run down:

1. :mod:`~automation.collect.safety.checks` looks at the raw bytes *before any parser runs*:
   sizes, zip bombs, XML entities, far cells, encryption, files that are not workbooks.
2. :mod:`~automation.collect.safety.pool` (:class:`ParserPool`) runs the pre-check *and*
   python-calamine in worker subprocesses (:mod:`~automation.collect.safety.worker`, started as
   ``python -m automation.collect.safety --worker``) under an address-space limit
   (``RLIMIT_AS``; Windows has none) and a timeout.  A worker that aborts in native code, runs
   out of memory or hangs costs one file, not the run.  Parsed cells come back as JSON
   (:mod:`~automation.collect.safety.protocol`; never pickle: a compromised worker must not be
   able to run code in the parent).

:mod:`~automation.collect.safety.limits` holds the limits and the refusals both sides share.  The
messages in :class:`Refused` are for office staff: Chinese, naming the file's problem and what to
do about it.  Everything here is standard library plus python-calamine (in the worker): a worker
starts light.
"""

from automation.collect.safety.checks import checked, precheck
from automation.collect.safety.limits import (
    SUPPORTED_SUFFIXES,
    Limits,
    ParseFailed,
    Refused,
    unsupported_reason,
)
from automation.collect.safety.pool import ParserPool, get_pool, shutdown_pool
from automation.collect.safety.protocol import ParsedBook, ParsedSheet
from automation.collect.safety.worker import WORKER_NICENESS, parse_in_process

__all__ = [
    "Limits",
    "Refused",
    "ParsedSheet",
    "ParsedBook",
    "ParseFailed",
    "ParserPool",
    "precheck",
    "checked",
    "get_pool",
    "shutdown_pool",
    "SUPPORTED_SUFFIXES",
    "unsupported_reason",
    "WORKER_NICENESS",
    "parse_in_process",
]
