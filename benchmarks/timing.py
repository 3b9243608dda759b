"""What every benchmark here times with: the median wall time of a call after warm-up calls."""

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
