"""``auto``'s candidates: which fine-tunes to try after the converged probe, for how many epochs, within the budget.

``auto`` never guesses. It fits the cached linear probe to convergence first (cheap), then tries the fine-tunes
that the data size and the time budget allow, each starting from the probed head (LP-FT, Kumar et al. 2022: a
trained head does not send large random gradients into the pretrained features), cheapest first: the top half
of the blocks (``freeze:N``), then every layer (``full``). The best validation score wins, the probe included, so
``auto`` is never worse on validation than its own probe; a tie goes to the simpler candidate (see
:func:`choose_winner`).
"""

from __future__ import annotations

import logging
import math
import time

from .. import distributed
from ..errors import ConfigError
from ..planned import Candidate
from .base import Strategy
from .registry import register

log = logging.getLogger(__name__)

MIN_PER_CLASS = 5  # fewer training examples per class: a backbone overfits before it adapts; the probe is the model
# planned epochs assume 20 % more than the timed steps: on SmSA, 3 epochs of freeze:6 timed at 679 s took 830 s
# (length-grouped batches pad to their longest row, and the long tail costs more than the median)
ESTIMATE_MARGIN = 1.2


def choose_winner(tried: list[dict], metric: str) -> tuple[str, str]:
    """(winner's name, why). ``tried``: the candidates in the order they ran, simplest first (the probe, then fewer
    trained layers, then augmentation), each with ``validation`` (higher is better, to 4 places) and
    ``validation_se`` (its bootstrap standard error); skipped ones have no ``validation``.

    The highest score wins; a tie goes to the simpler candidate. On Speech Commands mini (44 validation clips)
    freeze-half and full both scored 1.0: the simpler scored 0.882 test accuracy, full (which a tie broken by the
    lower validation loss had picked) 0.804. The standard error is reported, not used to choose. The
    one-standard-error rule (the simplest candidate within one SE of the best) was measured too: it kept the probe on
    Fashion-MNIST (validation 0.8889 vs full 0.8900, SE 0.015) at 0.860 test accuracy, where this rule kept full at
    0.8625. On hymenoptera (the probe vs freeze-half with augmentation) both kept 0.954 validation accuracy; on
    Speech Commands both kept freeze-half."""
    scored = [t for t in tried if t.get("validation") is not None]
    best = max(scored, key=lambda t: t["validation"])  # the first of equals: the simplest
    runner_up = max((t for t in scored if t is not best), key=lambda t: t["validation"], default=None)
    why = f"best validation {metric}: {best['validation']:.4f}"
    if runner_up is None:
        return best["name"], why + " (the only candidate)"
    why += f" vs {runner_up['name']} {runner_up['validation']:.4f}"
    lead, se = best["validation"] - runner_up["validation"], best.get("validation_se") or 0.0
    if lead == 0:
        why += "; tied, so the simpler one is kept"
    elif lead < se:
        why += f"; the lead is inside one standard error ({se:.4f}): validation barely tells them apart"
    return best["name"], why


def candidate_strategies(num_blocks: int) -> list[tuple[str, str]]:
    """(name, strategy) of the fine-tunes auto tries, cheapest first: the top half of the blocks, then everything."""
    return ([("freeze-half", f"freeze:{num_blocks // 2}")] if num_blocks >= 2 else []) + [("full", "full")]


def fit_epochs(candidate: dict, left_s: float | None, scale: float) -> float:
    """Epochs to run now: the planned ones, raised back up to the wanted ones or cut to what ``left_s`` allows at the
    measured pace (``scale``: actual / estimated seconds of the candidates so far), in half epochs; 0: skip."""
    wanted = candidate.get("wanted_epochs") or candidate["epochs"]
    if left_s is None:
        return wanted
    per_epoch = max(candidate.get("epoch_s", 0.0) * scale, 1e-6)
    return min(wanted, math.floor(left_s / per_epoch * 2) / 2)


EVALUATIONS_PER_RUN = 8  # on small data, where an epoch is a handful of steps


def evaluation_steps(steps_per_epoch: int, epochs: float) -> int | None:
    """Evaluate every N steps instead of every epoch when epochs are a handful of steps (small data raised to
    min_steps): 50 epochs of 4 steps would otherwise score the validation split 50 times, often costing more than
    the training. About EVALUATIONS_PER_RUN evaluations, never more often than once an epoch."""
    total = math.ceil(steps_per_epoch * epochs)
    if steps_per_epoch >= 25 or total <= steps_per_epoch * EVALUATIONS_PER_RUN:
        return None
    return max(steps_per_epoch, math.ceil(total / EVALUATIONS_PER_RUN))


def epochs_for(steps_per_epoch: int, min_steps: int, asked: float | None, default: float) -> float:
    """The asked epochs; else the default epochs, raised to reach ``min_steps`` optimizer steps on small data."""
    if asked is not None:
        return asked
    return float(max(default, math.ceil(min_steps / max(1, steps_per_epoch))))


def choose_candidates(*, n_train: int, num_labels: int, num_blocks: int, steps_per_epoch: int, epoch_eval_s: float,
                      step_s: dict[str, float], budget_s: float | None, lr: float, min_steps: int,
                      epochs_asked: float | None, default_epochs: float = 3.0) -> tuple[list[Candidate], list[str]]:
    """(candidates, notes). ``step_s``: measured seconds per training step of each candidate strategy;
    ``budget_s``: seconds left after the probe (None: no budget)."""
    notes: list[str] = []
    per_class = n_train / max(num_labels, 1)
    if per_class < MIN_PER_CLASS:
        notes.append(f"{per_class:.1f} training examples per class (< {MIN_PER_CLASS}): too few to fine-tune a "
                     "backbone; the converged probe is the model")
        return [], notes
    wanted = candidate_strategies(num_blocks)
    epochs = epochs_for(steps_per_epoch, min_steps, epochs_asked, default_epochs)
    out, left = [], budget_s
    for name, strategy in wanted:
        per_epoch = (steps_per_epoch * step_s[strategy] + epoch_eval_s) * ESTIMATE_MARGIN
        run_epochs = epochs
        if left is not None and per_epoch * run_epochs > left:
            fit = math.floor(left / per_epoch * 2) / 2  # half epochs
            if fit < min(1.0, epochs):
                notes.append(f"{name} ({strategy}) skipped: one epoch takes ~{per_epoch:.0f} s, {max(left, 0):.0f} s "
                             "of the budget are left (it runs, shortened, if the others finish early)")
                out.append(Candidate(name=name, strategy=strategy, epochs=0.0, lr=lr, estimated_s=0.0,
                                     epoch_s=round(per_epoch, 1), wanted_epochs=epochs))
                continue
            notes.append(f"{name} ({strategy}): {fit:g} epochs instead of {run_epochs:g} to fit the budget")
            run_epochs = fit
        estimate = per_epoch * run_epochs
        out.append(Candidate(name=name, strategy=strategy, epochs=run_epochs, lr=lr, estimated_s=round(estimate, 1),
                             epoch_s=round(per_epoch, 1), wanted_epochs=epochs))
        if left is not None:
            left -= estimate
    return out, notes


@register("auto", "the default: a converged linear probe, then fine-tuning candidates that fit the time budget; "
          "the best on validation wins (never below the probe)")
class Auto(Strategy):
    """``auto`` — the converged probe, then the planned fine-tunes from the probed head, then the best of them again
    with light augmentation where the modality has one; :func:`choose_winner` keeps the best on validation. What was
    tried, each candidate's score and cost, and why the winner won go to ``auto.json``, ``metrics.json`` and the
    report. The candidates and their epochs were planned before training (``plan.json``); one that would overrun the
    budget at the pace measured so far is skipped."""

    searches = True
    needs_feature_cache = True
    augments_by_default = False  # augmentation is a candidate of its own, kept only if validation agrees
    relative_cost = 2

    def trainable(self, groups):
        raise ConfigError("strategy 'auto' trains its candidates' strategies, not one of its own")

    def check(self, groups):
        pass  # each candidate is a strategy of its own, checked when the plan lists it

    def plan(self, planner):
        """The input size (where small pictures offer several), then the candidates that fit the budget after the
        probe's own cost, each step timed here."""
        planner.choose_input_size()
        step_s = {spec: planner.time_step(spec) for _, spec in candidate_strategies(planner.num_blocks)}
        forward = planner.forward_seconds()
        eval_size = planner.eval_batch_size
        rows = planner.rows("train") + planner.rows("validation")
        probe_s = forward * math.ceil(rows / eval_size) + 5.0  # features + fit
        reserve = planner.finishing_seconds(forward)
        budget = planner.budget_s
        config = planner.config
        candidates, notes = choose_candidates(
            n_train=planner.rows("train"), num_labels=len(planner.setup.data.label_names), num_blocks=planner.num_blocks,
            steps_per_epoch=planner.steps_per_epoch,
            epoch_eval_s=math.ceil(planner.rows("validation") / eval_size) * forward, step_s=step_s,
            budget_s=None if budget is None else budget - probe_s - reserve, lr=planner.lr,
            min_steps=config.min_steps, epochs_asked=planner.epochs_asked, default_epochs=config.epochs)
        estimate = round(probe_s + sum(c.estimated_s for c in candidates) + reserve, 1)
        parts = ", ".join(f"{c.name} {c.estimated_s:.0f} s ({c.epochs:g} epochs)" for c in candidates if c.epochs)
        budget_text = f"budget {budget / 60:.0f} min" if budget else "no budget"
        planner.note(f"auto: about {estimate / 60:.1f} min ({budget_text}): probe {probe_s:.0f} s"
                     + (f", {parts}" if parts else "") + f", scoring and report {reserve:.0f} s", quiet=False)
        for note in notes:
            planner.note(note)
        planner.plan_candidates(candidates, estimate, reserve)

    def fit(self, session):
        search = _Search(session)
        for planned in session.plan.candidates:
            search.attempt(planned.model_dump())
        # augmentation is a candidate too, not a silent default: the best fine-tune again with the light preset, kept
        # only if validation agrees (it helped spoken words and hurt small pictures in the measurements behind this)
        if search.best is not None and session.augmentable:
            search.attempt({**search.best["planned"], "name": f"{search.best['name']}+light", "augment": "light"})
        return search.conclude()


class _Search:
    """auto's candidate loop over a training session: the probe first, each fine-tune from the probed weights."""

    def __init__(self, session):
        self.session = session
        self.layout = session.layout
        self.probe = session.probe(final=True, folder=session.layout.auto, splits=("train", "validation"))
        score = session.score(self.probe)
        fit = self.probe.facts["probe"]
        self.tried = [{"name": "linear-probe", "strategy": "linear-probe", **score,
                       "seconds": round(session.elapsed(), 1), "l2": fit["l2"]}]
        log.info("auto: converged probe scores %.4f %s on validation (L2 %g)", score["validation"], session.metric,
                 fit["l2"])
        self.probed = session.snapshot()  # pretrained backbone + probed head: every candidate's start
        # the first fine-tune with the highest score so far: choose_winner keeps the first of equals, so no other
        # fine-tune can win and only this one's weights are held
        self.best: dict | None = None
        self.pace = {"estimated": 0.0, "actual": 0.0}

    def attempt(self, planned: dict) -> None:
        session, plan = self.session, self.session.plan
        left = session.seconds_left()
        scale = self.pace["actual"] / self.pace["estimated"] if self.pace["estimated"] else 1.0  # the pace so far
        epochs = distributed.agree(fit_epochs(planned, left, scale))  # from clocks: rank 0's decides for all
        if epochs < min(0.5, planned.get("wanted_epochs") or planned["epochs"]):
            self.tried.append({**planned, "skipped": f"{session.elapsed():.0f} s spent of the {plan.budget_s:.0f} s "
                               f"budget; one epoch takes ~{planned['epoch_s'] * scale:.0f} s at the measured pace"})
            return
        candidate = {**planned, "epochs": epochs}
        session.restore(self.probed)
        start = time.time()
        fitted = session.finetune(candidate["strategy"], epochs=epochs, lr=candidate["lr"],
                                  augment=candidate.get("augment"), folder=self.layout.auto / candidate["name"],
                                  head_lr_multiplier=1.0, deadline=session.deadline(), final=False)  # head probed
        self.pace["estimated"] += candidate["epoch_s"] * float(fitted.trainer.state.epoch or epochs)
        self.pace["actual"] += time.time() - start
        score = session.score(fitted)
        self.tried.append({**candidate, **score, "seconds": round(time.time() - start, 1),
                           "steps": fitted.output.global_step,
                           **({"stopped": "the time budget ran out"} if fitted.stopped_by_deadline else {})})
        log.info("auto: %s (%s) scores %.4f on validation in %.0f s", candidate["name"], candidate["strategy"],
                 score["validation"], time.time() - start)
        if self.best is None or score["validation"] > self.best["validation"]:
            self.best = {"name": candidate["name"], "validation": score["validation"], "state": session.snapshot(),
                         "fitted": fitted, "planned": planned}

    def conclude(self):
        """The winner's weights in the model, its curves as the run's, and ``auto.json`` written."""
        session = self.session
        winner, why = choose_winner(self.tried, session.metric)
        if winner == "linear-probe":  # the probe won: its head on the pretrained backbone
            session.restore(self.probed)
            fitted = self.probe
            full = session.probe_features()  # the test split's features, only now that they are needed
            fitted.eval_sets, fitted.facts["feature_cache"] = full.datasets, full.cache
        else:  # best is the winner: the probe did not tie it, and it is the first of the highest scores
            session.restore(self.best["state"])
            fitted = self.best["fitted"]
            fitted.model = session.setup.bundle.model
        session.adopt_history(fitted)
        plan = session.plan
        record = {"winner": winner, "why": why, "metric": session.metric, "probe_score": self.tried[0]["validation"],
                  "candidates": self.tried, "budget_s": plan.budget_s, "estimate_s": plan.estimate_s,
                  "started_at": round(session.started, 3), "seconds": round(session.elapsed(), 1),
                  "probe": self.probe.facts["probe"]}
        session.write_json(self.layout.auto_record, record)
        fitted.facts = {**({"feature_cache": fitted.facts["feature_cache"]} if winner == "linear-probe" else {}),
                        "auto": record}
        log.info("auto kept %s: %s", winner, why)
        return fitted
