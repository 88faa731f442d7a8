"""reliability.md T4, load and latency at fixed rates (open loop) against the production profile:
`make bench` runs bench/load/run.py's short mode (15 s per phase, about 2.5 minutes in all).
The table's durations and the soak run standalone:

    .venv/bin/python bench/load/run.py --full [--soak 30]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.load.run import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
