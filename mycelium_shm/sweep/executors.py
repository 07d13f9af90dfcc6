"""Executors: where batches of instances run.  One interface, three kinds.

``serial``: in this process.  ``local`` (the default): a process pool over
the cores (``forkserver`` where available, else ``spawn``).  ``ray``: Ray
tasks, one batch per task, on the cluster at ``RAY_ADDRESS`` if set, else on
a local Ray started bound to 127.0.0.1 without the dashboard.

Every executor yields each batch's results as the batch completes; the
caller sorts by instance index, so the output never depends on the kind or
the number of workers.  At most ``2 * workers + 1`` batches are in flight, so
memory stays flat however many instances there are.
"""

from __future__ import annotations

import abc
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Optional

from .spec import SweepSpec
from .worker import BatchResult, init_worker, run_batch

__all__ = ["EXECUTORS", "Executor", "make_executor"]

Batch = list[int]


class Executor(abc.ABC):
    """Runs batches; ``run`` yields ``list[BatchResult]`` in completion order."""

    name = "?"

    def __init__(self, workers: Optional[int] = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)

    @abc.abstractmethod
    def run(self, spec: SweepSpec, batches: Iterable[Batch]) -> Iterator[list[BatchResult]]:
        ...

    def close(self) -> None:
        """Stop the workers (after Ctrl-C: without waiting for queued batches)."""
        return None

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SerialExecutor(Executor):
    name = "serial"

    def __init__(self, workers: Optional[int] = None) -> None:
        super().__init__(1)

    def run(self, spec: SweepSpec, batches: Iterable[Batch]) -> Iterator[list[BatchResult]]:
        for batch in batches:
            yield run_batch(spec, batch)


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, workers: Optional[int] = None, start_method: Optional[str] = None) -> None:
        super().__init__(workers)
        methods = multiprocessing.get_all_start_methods()
        method = start_method or ("forkserver" if "forkserver" in methods else "spawn")
        self._pool = ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context(method), initializer=init_worker
        )

    def run(self, spec: SweepSpec, batches: Iterable[Batch]) -> Iterator[list[BatchResult]]:
        pending: set[Future[list[BatchResult]]] = set()
        todo = iter(batches)
        limit = 2 * self.workers + 1
        exhausted = False
        while True:
            while not exhausted and len(pending) < limit:
                batch = next(todo, None)
                if batch is None:
                    exhausted = True
                    break
                pending.add(self._pool.submit(run_batch, spec, batch))
            if not pending:
                return
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, workers: Optional[int] = None) -> None:
        try:
            import ray
        except ImportError:
            raise RuntimeError(
                "the ray executor needs the 'ray' package (pip install ray)"
            ) from None
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            address = os.environ.get("RAY_ADDRESS")
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address:
                ray.init(address=address, **options)
            else:
                ray.init(
                    address="local",
                    num_cpus=workers or os.cpu_count() or 1,
                    _node_ip_address="127.0.0.1",
                    **options,
                )
            self._started = True
        if workers is None:
            workers = int(ray.cluster_resources().get("CPU", 1))
        super().__init__(workers)
        self._task = ray.remote(num_cpus=1, max_retries=0)(_ray_batch)

    def run(self, spec: SweepSpec, batches: Iterable[Batch]) -> Iterator[list[BatchResult]]:
        ray = self._ray
        spec_ref = ray.put(spec)
        pending: list[Any] = []
        todo = iter(batches)
        limit = 2 * self.workers + 1
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < limit:
                    batch = next(todo, None)
                    if batch is None:
                        exhausted = True
                        break
                    pending.append(self._task.remote(spec_ref, batch))
                if not pending:
                    return
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    yield ray.get(ref)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False


def _ray_batch(spec: SweepSpec, batch: Batch) -> list[BatchResult]:
    return run_batch(spec, batch)


EXECUTORS: dict[str, type[Executor]] = {
    "serial": SerialExecutor,
    "local": LocalExecutor,
    "ray": RayExecutor,
}


def make_executor(kind: str = "local", workers: Optional[int] = None) -> Executor:
    """An executor by name (serial, local, ray)."""
    try:
        cls = EXECUTORS[kind]
    except KeyError:
        raise ValueError(f"unknown executor {kind!r} (executors: {', '.join(EXECUTORS)})") from None
    return cls(workers)

