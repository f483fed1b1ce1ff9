"""Where a local run's batches are processed: in this process, or in a local process pool.

Each returns a `loop.Process` strategy (batches in, results out in the order they are to be
written); the loop itself, the writing and the accounting are the same for both (`loop.py`).
Dask runs the same loop on its workers (`dask.py`).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager

from pipeline.run.batch import (
    BatchResult,
    PreparedBatch,
    RunContext,
    error_row,
    finish_batch,
    load_models,
    prepare_batch,
    process_batch,
)
from pipeline.run.config import RunConfig
from pipeline.run.loop import Batch, Process

# Native thread pools a worker must not start: N workers on N cores each run single-threaded
# (ONNX Runtime's own threads are set by the LAC runner). Read when a library is imported, so
# they are set in the environment the workers are spawned with, not inside the worker.
_WORKER_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def serially(config: RunConfig, ctx: RunContext, should_stop: Callable[[], bool]) -> Process:
    """One process, batch after batch. The next batch is read and normalised before the
    current one is finished, and LAC analyses it in a background thread meanwhile
    (`LACTokenizer.analyse_ahead`) when this process has the cores to itself: the CRF, the
    rules and the writing are single-threaded, so without this one core idled through them.
    Results come in batch order; after a stop request the batch read ahead is dropped (never
    written: the next run does it)."""

    def finish(pending: tuple[Batch, PreparedBatch | None]) -> tuple[Batch, BatchResult]:
        batch, prepared = pending
        if prepared is None:
            return batch, BatchResult()
        return batch, finish_batch(prepared, config, ctx)

    def process(batches: Iterator[Batch]) -> Iterator[tuple[Batch, BatchResult]]:
        nlp = None
        pending: tuple[Batch, PreparedBatch | None] | None = None
        try:
            for batch in batches:
                prepared = prepare_batch(batch.docs, ctx) if batch.docs else None
                if prepared is not None and prepared.ready and config.lac_threads is None:
                    if nlp is None:  # loaded on the first batch: a rerun that skips all
                        nlp = load_models(config)[0]  # never loads the models
                    if hasattr(nlp.tokenizer, "analyse_ahead"):
                        nlp.tokenizer.analyse_ahead(prepared.texts, batch_size=nlp.batch_size)
                if pending is not None:
                    yield finish(pending)
                pending = (batch, prepared)
                if should_stop():
                    return
            if pending is not None and not should_stop():
                yield finish(pending)
        finally:
            if nlp is not None and hasattr(nlp.tokenizer, "forget_ahead"):
                nlp.tokenizer.forget_ahead()

    return process


def in_pool(
    config: RunConfig, ctx: RunContext, workers: int, should_stop: Callable[[], bool]
) -> Process:
    """`workers` processes; at most `2 × workers` batches in flight, so memory stays flat.
    Results come as batches complete (in batch order among those done together)."""

    def process(batches: Iterator[Batch]) -> Iterator[tuple[Batch, BatchResult]]:
        with _single_threaded_workers():
            # `spawn`: workers inherit neither the output lock nor a copy of this memory.
            pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(config, os.getpid()),
            )
            in_flight: dict[Future, Batch] = {}
            try:
                for batch in batches:
                    while len(in_flight) >= 2 * workers:
                        yield from _drain(in_flight, ctx)
                    in_flight[pool.submit(process_batch, batch.docs, config, ctx)] = batch
                if should_stop():  # finish the batches already running, drop the queued ones
                    for fut in list(in_flight):
                        if fut.cancel():
                            del in_flight[fut]
                while in_flight:
                    yield from _drain(in_flight, ctx)
            except BaseException:
                for proc in list((pool._processes or {}).values()):  # noqa: SLF001 - no API
                    proc.terminate()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            pool.shutdown(wait=True)

    return process


@contextmanager
def _single_threaded_workers() -> Iterator[None]:
    saved = {var: os.environ.get(var) for var in _WORKER_THREAD_VARS}
    for var in _WORKER_THREAD_VARS:
        os.environ.setdefault(var, "1")
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def _drain(in_flight: dict[Future, Batch], ctx: RunContext) -> Iterator[tuple[Batch, BatchResult]]:
    done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
    for fut in sorted(done, key=lambda f: in_flight[f].key):
        batch = in_flight.pop(fut)
        try:
            result = fut.result()
        except BrokenProcessPool:
            raise
        except Exception as exc:  # noqa: BLE001 - the batch's documents become errors rows
            result = failed_batch(batch, exc, ctx)
        yield batch, result


def failed_batch(batch: Batch, exc: BaseException, ctx: RunContext) -> BatchResult:
    """Every document of a batch whose worker raised becomes an errors row (the run goes on)."""
    result = BatchResult()
    for doc in batch.docs:
        result.add("errors", error_row(ctx.run_id, doc.source_file, doc.doc_id, "process", exc))
    return result


def _watch_parent(parent_pid: int) -> None:
    """A worker exits when the run that started it is gone (even killed with SIGKILL)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="tifa-parent-watch", daemon=True).start()


def _init_worker(config: RunConfig, parent_pid: int) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # Ctrl-C reaches the whole process group: the main process decides what stops, not workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _watch_parent(parent_pid)
    load_models(config)
