"""An evaluation's jobs (its scoring, each greedy-generation batch) on a CPU's two cores: two lanes, Python
threads with half of torch's threads each, that take the next job as they come free."""

from __future__ import annotations

import threading
from typing import Callable

import torch


def in_lanes(jobs: list[Callable[[], object]], *, enabled: bool) -> list:
    """``[job() for job in jobs]``: with ``enabled``, two or more torch threads and two or more jobs, two lanes
    take the jobs in list order, each the next one when it is free (the first job in this thread, the second in
    a helper), torch held at half its threads for the lanes' life (ATen releases the GIL inside its kernels, so
    each lane keeps its cores); otherwise one after the other. Put the longest job first.

    Why: a greedy decoding step's products have a batch's worth of rows, too few for MKL to use a second core
    well (SmolLM2's 128 x 576 x 1536 float32 product: 118 GFLOPS on one thread of a 2-core Intel Xeon, 139 on
    two), while scoring's large products scale; one core each keeps both busy. A job's numbers are those of
    its own computation at the lanes' thread count, whichever lane runs it, so every run gives the same
    results. Each job enters its own autocast and grad-mode contexts (both are per thread); the caller fixes the
    model's train/eval mode around the lanes. The first exception a job raises is raised here once both lanes
    have stopped (no lane starts a job after it)."""
    threads = torch.get_num_threads()
    if not enabled or threads < 2 or len(jobs) < 2:
        return [job() for job in jobs]
    results: list = [None] * len(jobs)
    errors: list[BaseException] = []
    lock = threading.Lock()
    queue = iter(range(len(jobs)))

    def lane() -> None:
        while True:
            with lock:
                i = None if errors else next(queue, None)
            if i is None:
                return
            try:
                results[i] = jobs[i]()
            except BaseException as err:  # noqa: BLE001 (raised in the caller's thread below)
                with lock:
                    errors.append(err)
                return

    torch.set_num_threads(max(1, threads // 2))
    try:
        helper = threading.Thread(target=lane, name="unlearn-lane", daemon=True)
        helper.start()
        lane()
        helper.join()
    finally:
        torch.set_num_threads(threads)
    if errors:
        raise errors[0]
    return results
