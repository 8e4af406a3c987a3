"""Where a multi-run command's runs execute: here, one after another (``sequential``, the default), or as Ray tasks
(``ray``) on a local Ray instance or a cluster (``--address``). Ray does the scheduling, the resources and the
worker processes; this module only hands it whole runs (a TrainConfig in, the run's timing out) and takes back what
finished. Every run writes its own run folder, so workers share nothing but the study folder's disk (and, on one
machine, the feature cache).
"""

from __future__ import annotations

import logging
import os
import resource
import time
from collections.abc import Iterator

from ..config import TrainConfig
from ..errors import ConfigError, TransferLearnError
from ..report.html import write_report
from ..train.engine import finetune

log = logging.getLogger(__name__)


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def execute_run(config_json: str, env: dict[str, str]) -> dict:
    """One run, in whatever process this is: the study's tracker variables set for it, the run trained, its wall
    and CPU seconds returned."""
    config = TrainConfig.model_validate_json(config_json)
    before = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    wall, cpu = time.time(), cpu_seconds()
    try:
        finetune(config, finish=(write_report,))
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return {"wall_s": time.time() - wall, "cpu_s": cpu_seconds() - cpu}


class Sequential:
    """Each run as it is submitted, in this process."""

    slots = 1

    def __init__(self, before_run=lambda: None):
        self.before_run = before_run
        self._done: list[tuple[str, dict]] = []

    def submit(self, name: str, config: TrainConfig, env: dict[str, str]) -> None:
        self.before_run()  # this process holds the study's tracker variables (and MLflow parent run) already
        self._done.append((name, execute_run(config.model_dump_json(), {})))

    def finished(self, wait: bool = False) -> Iterator[tuple[str, dict]]:
        done, self._done = self._done, []
        yield from done

    def close(self) -> None:
        pass


class RayTasks:
    """Each run as a Ray task needing ``cpus`` CPUs and ``gpus`` GPUs; at most ``slots`` in flight (what the
    cluster holds at once), so the study's order and time budget still decide what starts next."""

    def __init__(self, address: str | None, workers: int | None, cpus: float, gpus: float):
        try:
            import ray
        except ImportError:
            raise ConfigError("--backend ray needs Ray: pip install 'transferlearn[ray]' (or 'ray>=2.30')") from None
        self.ray = ray
        self.started_here = not ray.is_initialized()
        if self.started_here:
            if address:  # a cluster: its own resources decide how many runs fit
                ray.init(address=address, log_to_driver=False)
            else:  # a local instance on this machine only (loopback), sized to the workers asked for
                local_cpus = int(workers * cpus) if workers else None
                ray.init(num_cpus=local_cpus, include_dashboard=False, log_to_driver=False,
                         _node_ip_address="127.0.0.1")
        total = ray.cluster_resources()
        self.slots = max(1, int(total.get("CPU", 1) // max(cpus, 1e-9)))
        if gpus:
            self.slots = min(self.slots, max(1, int(total.get("GPU", 0) // gpus)))
            if total.get("GPU", 0) < gpus:
                raise ConfigError(f"--gpus-per-run {gpus:g}: the Ray cluster has {total.get('GPU', 0):g} GPUs")
        if workers:
            self.slots = min(self.slots, workers)
        self.cpus, self.gpus = cpus, gpus
        self.remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(execute_run)
        self.in_flight: dict = {}
        log.info("ray: %d runs at a time (%g CPUs%s each) on %s", self.slots, cpus,
                 f", {gpus:g} GPUs" if gpus else "", address or "a local instance")

    def submit(self, name: str, config: TrainConfig, env: dict[str, str]) -> None:
        threads = config.threads or max(1, int(self.cpus))  # a task uses the CPUs it was given, not the node's
        config = config.model_copy(update={"threads": threads})
        self.in_flight[self.remote.remote(config.model_dump_json(), env)] = name

    def finished(self, wait: bool = False) -> Iterator[tuple[str, dict]]:
        """The runs done now (``wait``: at least one, blocking until it is). A failed run raises its error here."""
        if not self.in_flight:
            return
        ready, _ = self.ray.wait(list(self.in_flight), num_returns=1, timeout=None if wait else 0)
        if ready:  # and whatever else is already done
            ready, _ = self.ray.wait(list(self.in_flight), num_returns=len(self.in_flight), timeout=0)
        for ref in ready:
            name = self.in_flight.pop(ref)
            try:
                yield name, self.ray.get(ref)
            except self.ray.exceptions.RayTaskError as exc:  # the run's own error, as the sequential backend gives it
                if isinstance(exc.cause, TransferLearnError):
                    raise exc.cause from None
                raise TransferLearnError(f"run {name} failed on a Ray worker: {exc.cause!r}") from None

    def close(self) -> None:
        for ref in self.in_flight:
            self.ray.cancel(ref, force=True)
        self.in_flight = {}
        if self.started_here:
            self.ray.shutdown()


def executor_for(config, before_run=lambda: None):
    if config.backend == "ray":
        import torch

        gpus = config.gpus_per_run if config.gpus_per_run is not None else (1.0 if torch.cuda.is_available() else 0.0)
        return RayTasks(config.address, config.workers, config.cpus_per_run, gpus)
    return Sequential(before_run)
