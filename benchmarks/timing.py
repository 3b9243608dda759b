"""What every benchmark here times with: the median wall time of a call after warm-up calls."""

import os
import statistics
import time


def median_seconds(fn, runs, warmup=1, clock=None):
    """Median wall time in seconds of `fn()` over `runs` calls, after `warmup` untimed calls.

    The median, not the mean: on a shared 2-core machine one slow call (another process, a
    re-plan after a resize) should not move the figure. `clock`: default `time.perf_counter`
    (wall); `time.process_time` counts this process's CPU seconds instead.
    """
    clock = clock or time.perf_counter
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


def load_average():
    """The 1, 5 and 15 minute load averages and the CPU count, printed beside every figure: on a
    shared machine they say how much a wall time can be trusted."""
    return " ".join(f"{v:.1f}" for v in os.getloadavg()) + f" on {os.cpu_count()} CPUs"
