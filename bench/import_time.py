"""Wall time of `import logkit` in fresh interpreters (median of N), and what it pulls in."""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _timing import line

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 15
PROBE = (
    "import time, sys; t = time.perf_counter(); import logkit; "
    "print(time.perf_counter() - t); "
    "print(sum(m.split('.')[0] == 'google' for m in sys.modules)); "
    "t = time.perf_counter(); "
    "logkit.build_event('message', tenant_id='t_a', env='dev', project_id='p', "
    "surface_id='s', app_id='a'); "
    "print(time.perf_counter() - t)"
)


def main() -> None:
    samples, first_event = [], []
    google_modules = 0
    for _ in range(RUNS):
        out = subprocess.run(
            [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
        ).stdout.split()
        samples.append(float(out[0]))
        google_modules = max(google_modules, int(out[1]))
        first_event.append(float(out[2]))
    line("import logkit median", statistics.median(samples) * 1000, "ms", "target < 150 ms")
    line("import logkit max", max(samples) * 1000, "ms")
    line("google modules imported", google_modules, "modules", "target 0")
    # The envelope's validator is built lazily (pydantic defer_build): the first event pays.
    line(
        "first event built after import, median",
        statistics.median(first_event) * 1000,
        "ms",
        "one-time; logkit.configure() pays it at start-up",
    )


if __name__ == "__main__":
    main()
