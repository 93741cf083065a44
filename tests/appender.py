"""A child process for the concurrency and crash tests: appends events and acknowledges each.

Usage: python -m tests.appender HOME PREFIX COUNT [START_AT_EPOCH]
Prints `acked <rev>` after each append returned, flushing, so the parent knows what was
acknowledged before it killed us.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tests.inproc import InProc


def main() -> None:
    home, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if len(sys.argv) > 4:  # start together with the other writers
        time.sleep(max(0.0, float(sys.argv[4]) - time.time()))
    px = InProc(Path(home))
    for i in range(count):
        code, _, err = px.run(f"register host {prefix}-{i}")
        if code != 0:
            print(f"failed {err.strip()}", flush=True)
            sys.exit(1)
        print(f"acked {px.head()[1]}", flush=True)


if __name__ == "__main__":
    main()
