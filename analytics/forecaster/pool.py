"""The process pool that fits a batch's due origins in parallel, deterministically.

Workers start with `forkserver` (never `fork`: the consumer's threads and librdkafka do not
survive a fork) and run BLAS single-threaded, so N workers use N cores and a fit's numbers do
not depend on thread scheduling. Each worker fits one origin once at start, before its priority
drops (warm-up: imports, first-call costs), so the first real batch does not pay for them.
`workers=0` fits in-process.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import select
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np

from ml.forecast import forecast_origin
from ml.outcome import Outcome
from ml.params import ForecastParams

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitJob:
    """One origin to fit: the window of log closes and the series' cached order."""

    log_closes: tuple[float, ...]
    order: tuple[int, int, int] | None
    refits_left: int


@dataclass(frozen=True)
class FitResult:
    """An origin's outcome and how long its fit took, measured in the process that ran it
    (the parent's clock would count queueing and the round trip too)."""

    outcome: Outcome
    seconds: float


# Read by OpenBLAS/OpenMP/MKL when they load: a worker's libraries start single-threaded.
SINGLE_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# A short window every worker fits once when it starts (imports, first-call costs), so the first
# real batch does not pay for them.
WARM_JOB_CLOSES = tuple(float(v) for v in np.log(100 + np.cumsum(np.ones(130))))


def _start_worker(nice: int, idle: bool, consumer_pid: int, params: ForecastParams) -> None:
    _exit_with(consumer_pid)
    _limit_threads()
    # The warm-up fit before the priority drops: at SCHED_IDLE on a busy machine it waited for
    # idle CPU, and so did the forecaster's start, which waits for its pool.
    fit_one(FitJob(WARM_JOB_CLOSES, None, 0), params)
    # Fits are background work: at a lower CPU priority they yield to the services whose
    # latency counts (storage, the analytics consumer's alerts, the relay) on a small machine.
    if nice:
        os.nice(nice)
    if idle and hasattr(os, "SCHED_IDLE"):  # Linux; elsewhere niceness alone
        # SCHED_IDLE: run only on CPU time no normal process wants. Nice 10 still has a tenth
        # of a nice-0 process's weight.
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def _started(_: int) -> int:
    """A no-op task: it runs once a worker has started (and warmed up)."""
    return os.getpid()


def _exit_with(pid: int) -> None:
    """Exit this worker as soon as process `pid` (the consumer that started the pool) is gone.

    A consumer killed with SIGKILL never shuts its pool down, and nothing else would end the
    worker: it waits on the call queue, whose write end it holds itself, and it holds the
    forkserver's liveness pipe open, so the forkserver stays too: each crash of the forecaster
    left its workers (~180 MB each) and a forkserver behind for good.
    """
    try:
        watched = os.pidfd_open(pid)
    except ProcessLookupError:  # gone already
        os._exit(1)

    def wait_then_exit() -> None:
        select.select([watched], [], [])  # readable once the process has exited
        os._exit(1)

    threading.Thread(target=wait_then_exit, name="exit-with-consumer", daemon=True).start()


def _limit_threads() -> None:
    # Load every library a fit uses first (scipy brings an OpenBLAS of its own), then limit
    # them all: a limit set before a library loads does not reach it.
    import scipy.optimize  # noqa: F401
    import scipy.signal  # noqa: F401
    from threadpoolctl import threadpool_limits

    import ml.forecast  # noqa: F401

    threadpool_limits(1)


def fit_one(job: FitJob, params: ForecastParams) -> FitResult:
    started = time.perf_counter()
    outcome = forecast_origin(np.asarray(job.log_closes), job.order, job.refits_left, params)
    return FitResult(outcome, time.perf_counter() - started)


class FitPool:
    """Fits origins; the same jobs give the same outcomes, whichever worker runs them (only
    the durations differ)."""

    def __init__(
        self, params: ForecastParams, workers: int, nice: int = 0, idle: bool = False
    ) -> None:
        """`nice`: how much lower the workers' CPU priority is (os.nice; 0 keeps it); `idle`:
        the workers run under SCHED_IDLE (only when a core has nothing else to run)."""
        self._params = params
        self._workers = workers
        self._nice = nice
        self._idle = idle
        self._executor: ProcessPoolExecutor | None = None
        if workers > 0:
            self._start()

    def _start(self) -> None:
        context = multiprocessing.get_context("forkserver")
        os.environ.update(SINGLE_THREAD_ENV)  # inherited by the forkserver and its workers
        self._executor = ProcessPoolExecutor(
            self._workers,
            mp_context=context,
            initializer=_start_worker,
            initargs=(self._nice, self._idle, os.getpid(), self._params),
        )
        list(self._executor.map(_started, range(self._workers)))

    def fit(self, jobs: Sequence[FitJob]) -> list[FitResult]:
        if not jobs:
            return []
        if self._executor is None or len(jobs) == 1:
            return self._fit_here(jobs)
        chunk = max(1, len(jobs) // (4 * self._workers))
        try:
            return list(
                self._executor.map(fit_one, jobs, [self._params] * len(jobs), chunksize=chunk)
            )
        except BrokenProcessPool:
            # A worker died (killed, out of memory): start a new pool; the batch fits again.
            self._restart()
            return self._fit_here(jobs)

    @property
    def background(self) -> bool:
        """Whether fits run in worker processes (submit returns before the fit is done)."""
        return self._executor is not None

    def submit(self, job: FitJob) -> Future[FitResult]:
        """Start fitting `job`; in-process pools fit it now and return a done future."""
        if self._executor is not None:
            try:
                return self._executor.submit(fit_one, job, self._params)
            except BrokenProcessPool:
                self._restart()
        done: Future[FitResult] = Future()
        done.set_result(self._fit_here([job])[0])
        return done

    def result(self, future: Future[FitResult], job: FitJob) -> FitResult:
        """The outcome of a submitted `job`; fitted here if its worker died."""
        try:
            return future.result()
        except BrokenProcessPool:
            if self._executor is not None and getattr(self._executor, "_broken", False):
                self._restart()
            return self._fit_here([job])[0]

    def _restart(self) -> None:
        logger.warning("a fit worker died: restarting the pool")
        self.close()
        self._start()

    def _fit_here(self, jobs: Sequence[FitJob]) -> list[FitResult]:
        """In this process, with one BLAS thread like the workers: the same numbers."""
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            return [fit_one(job, self._params) for job in jobs]

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)
            self._executor = None
