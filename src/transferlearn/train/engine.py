"""``finetune(config) -> Run``, the conductor: the run folder, then the setup, the plan (decided once, saved once),
the strategy's own ``fit`` on a training :class:`~transferlearn.train.session.Session`, and what the run leaves
(model, scores, predictions). It never asks which strategy it runs; the layer above writes the report
(``finish``)."""

from __future__ import annotations

import logging
import time
from typing import Callable

from transformers import set_seed

from .. import distributed
from ..config import Plan, TrainConfig, save_config
from ..errors import ConfigError, RunInterrupted
from ..io import atomic_write_bytes, atomic_write_json
from ..layout import RunLayout
from ..machine import thread_settings
from ..run import Run, default_run_dir
from ..run_folder import (
    check_free_space,
    check_resume,
    has_checkpoints,
    last_checkpoint,
    prepare_folder,
    remove_checkpoints,
    remove_failed_start,
    trim_history,
)
from ..strategies import parse_strategy
from .baseline import fit_baseline
from .outputs import save_model, write_metrics
from .plan import resolve_plan
from .session import Fitted, Session
from .setup import Setup
from .tracking import log_final, tracking_env
from .trainer import training_precision, use_cpu

log = logging.getLogger(__name__)


def finetune(config: TrainConfig, plan: Plan | None = None, *, callbacks: tuple = (),
             finish: tuple[Callable[[Run], None], ...] = ()) -> Run:
    """Train, evaluate and write the run folder; returns the finished :class:`Run`.

    ``plan``: decisions to reuse as they are (reproducing a run) instead of resolving them again. ``callbacks``:
    Trainer callbacks added to every trainer the run builds (a sweep's pruning reporter). ``finish``: what the
    layers above write into the folder once the model is scored (the report), before the checkpoints go — until
    then a crashed run can still be finished with --resume."""
    training_precision(config)  # --device cuda without a GPU, fp16 on a CPU: refused before any data is read
    # under torchrun / accelerate launch: the process group now, so the ranks agree from the first step on; only
    # rank 0 touches the run folder (distributed.on_main), and every rank trains and evaluates
    distributed.init(cpu=use_cpu(config))
    layout = RunLayout(config.output or default_run_dir(config))
    resume_from = _resume_point(config, layout)
    fresh = not layout.root.is_dir() or not any(layout.root.iterdir())
    replaced = distributed.on_main(prepare_folder, config, layout)
    try:
        config = config.model_copy(update={"output": str(layout.root)})
        if not (config.resume and layout.config.exists() and not config.resume_with_changes):
            distributed.on_main(save_config, config, layout.config)  # once: what was asked for (a resumed run keeps its own)
        with tracking_env(config, layout), thread_settings(config.threads):
            run = _train(config, layout, resume_from, plan, callbacks)
            distributed.on_main(_finish, config, run, finish)
        distributed.barrier()  # the other ranks return the run rank 0 has finished writing
    except BaseException as exc:
        unresumable = isinstance(exc, RunInterrupted) and not exc.resumable
        if distributed.is_main() and not config.resume and (unresumable or not has_checkpoints(layout)):
            remove_failed_start(layout, fresh)  # nothing to resume: a fixed re-run must not meet "already a run"
        if replaced is not None:  # the new run failed: the old one comes back as it was
            replaced.restore()
            if isinstance(exc, RunInterrupted):
                raise RunInterrupted(f"stopped by {exc.signal_name}; {layout.root} holds the previous run again, as "
                                     "it was (the interrupted --overwrite run is discarded)", exc.signal_name) from None
        raise
    if replaced is not None:
        replaced.discard()
    return Run.load(layout.root)


def _resume_point(config: TrainConfig, layout: RunLayout) -> str | None:
    """The checkpoint --resume continues from (after checking that nothing it was trained with changed)."""
    if not config.resume:
        return None
    checkpoint = last_checkpoint(layout)
    if checkpoint is None:
        raise ConfigError(f"--resume: no checkpoint in {layout.checkpoints} to resume from")
    check_resume(config, layout)
    distributed.on_main(trim_history, layout, checkpoint)
    return checkpoint


def _train(intent: TrainConfig, layout: RunLayout, resume_from: str | None, given: Plan | None,
           callbacks: tuple) -> Run:
    set_seed(intent.seed)
    started = time.time()  # the time budget counts from here: loading and planning are part of the run
    # a resumed run keeps the decisions its checkpoints were made with; a reproduced one, the decisions it was given
    known = Plan.load(layout.plan) if resume_from and layout.plan.exists() else given
    setup = Setup.build(known.apply(intent) if known else intent)  # e.g. at the plan's input size
    distributed.on_main(check_free_space, layout, setup.bundle.info.get("parameters"), intent)
    distributed.on_main(atomic_write_json, layout.data_summary, setup.data.summary())
    if known is not None:
        plan = known
        distributed.on_main(plan.save, layout.plan)
    else:  # measured steps and the LR finder's loss differ by rank: rank 0's plan rules
        plan = distributed.agree(resolve_plan(intent, setup, layout))
    config = plan.apply(intent)
    setup = setup.for_config(config)  # the plan may have chosen an input size: a view encoding at it
    strategy = parse_strategy(config.strategy)
    session = Session(config, plan, setup, layout, started=started, callbacks=callbacks, resume_from=resume_from)
    log.info("run folder: %s", layout.root)
    start = time.time()
    fitted = strategy.fit(session)
    train_time = time.time() - start
    trainable = sum(p.numel() for p in fitted.trainer.model.parameters() if p.requires_grad)
    final_model = strategy.finalize(fitted.model, layout.adapter)
    strategy.release(fitted.model)
    distributed.on_main(save_model, final_model, setup.bundle.processor, layout.model)
    baseline = distributed.on_main(fit_baseline, config, setup) if config.baseline else None
    write_metrics(config, setup, layout, fitted, train_time, trainable, baseline)  # every rank predicts; rank 0 writes
    distributed.on_main(_leave_extras, config, setup, layout, fitted)
    return Run.load(layout.root) if distributed.is_main() else None


def _leave_extras(config: TrainConfig, setup: Setup, layout: RunLayout, fitted: Fitted) -> None:
    """The final metrics to the trackers, and the augmentation preview."""
    if config.report_to and config.report_to != ["none"]:
        log_final(config, layout, Run.load(layout.root).metrics, fitted.output.global_step)
    preview = setup.modality.augmentation_preview(setup.encoded["train"], setup.bundle, config)
    if preview is not None:
        atomic_write_bytes(layout.augmentation, preview)


def _finish(config: TrainConfig, run: Run, finish: tuple) -> None:
    for write in finish:
        write(run)
    if not config.keep_checkpoints:  # last: the best model is in model/
        remove_checkpoints(run.layout)
