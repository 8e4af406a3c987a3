"""The record of a fine-tune a search plans to try (``plan.json``'s ``candidates``). Its own small module, below the
config and the strategies alike: the config types the plan with it without importing the strategies (and torch)
when ``tl --help`` starts."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Candidate(BaseModel):
    """A fine-tune auto plans to try after the probe (``plan.json``'s ``candidates``)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    strategy: str
    epochs: float  # planned; 0 when it did not fit the budget as estimated (it runs if time turns out to be left)
    lr: float
    estimated_s: float
    epoch_s: float = 0.0  # the estimated cost of one epoch (training + validation)
    wanted_epochs: float = 0.0  # before the budget cut
