"""``python -m automation.collect.safety --worker LIMITS_JSON``: the parser worker the pool starts."""

import sys

from automation.collect.safety.worker import worker_main

if __name__ == "__main__":  # pragma: no cover - exercised through ParserPool
    if len(sys.argv) >= 3 and sys.argv[1] == "--worker":
        sys.exit(worker_main(sys.argv[2:]))
    sys.exit("usage: python -m automation.collect.safety --worker LIMITS_JSON")
