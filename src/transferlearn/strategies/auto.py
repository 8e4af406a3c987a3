"""``auto``'s candidates: which fine-tunes to try after the converged probe, for how many epochs, within the budget.

``auto`` never guesses. It fits the cached linear probe to convergence first (cheap), then tries the fine-tunes
that the data size and the time budget allow, each starting from the probed head (LP-FT, Kumar et al. 2022: a
trained head does not send large random gradients into the pretrained features), cheapest first: the top half
of the blocks (``freeze:N``), then every layer (``full``). The best validation score wins, the probe included, so
``auto`` is never worse on validation than its own probe; a tie goes to the simpler candidate (see
:func:`choose_winner`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

MIN_PER_CLASS = 5  # fewer training examples per class: a backbone overfits before it adapts; the probe is the model
# planned epochs assume 20 % more than the timed steps: on SmSA, 3 epochs of freeze:6 timed at 679 s took 830 s
# (length-grouped batches pad to their longest row, and the long tail costs more than the median)
ESTIMATE_MARGIN = 1.2


@dataclass
class Candidate:
    name: str
    strategy: str
    epochs: float  # planned; 0 when it did not fit the budget as estimated (it runs if time turns out to be left)
    lr: float
    estimated_s: float
    epoch_s: float = 0.0  # the estimated cost of one epoch (training + validation)
    wanted_epochs: float = 0.0  # before the budget cut

    def as_dict(self) -> dict:
        return asdict(self)


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
                out.append(Candidate(name, strategy, 0.0, lr, 0.0, round(per_epoch, 1), epochs))
                continue
            notes.append(f"{name} ({strategy}): {fit:g} epochs instead of {run_epochs:g} to fit the budget")
            run_epochs = fit
        estimate = per_epoch * run_epochs
        out.append(Candidate(name, strategy, run_epochs, lr, round(estimate, 1), round(per_epoch, 1), epochs))
        if left is not None:
            left -= estimate
    return out, notes
