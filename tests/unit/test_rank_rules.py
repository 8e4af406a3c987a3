"""The rank rules in one process: every helper is the identity / a plain call, and the process count comes from
torchrun's variables (so the engine's step arithmetic counts the global batch)."""

from __future__ import annotations

import pytest

from transferlearn import distributed
from transferlearn.config import load_config


def test_one_process_is_rank_zero_of_one(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert (distributed.world_size(), distributed.rank(), distributed.is_main()) == (1, 0, True)
    assert distributed.agree({"epochs": 3}) == {"epochs": 3}
    assert distributed.any_rank(True) is True and distributed.any_rank(False) is False
    assert distributed.on_main(lambda a, b=0: a + b, 2, b=3) == 5
    with pytest.raises(ValueError, match="boom"):
        distributed.on_main(lambda: (_ for _ in ()).throw(ValueError("boom")))
    distributed.barrier()


def test_a_non_zero_rank_is_not_main_and_the_batch_is_global(monkeypatch):
    config = load_config(data="-", model="-", batch_size=8, gradient_accumulation_steps=2)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    assert distributed.world_size() == 4 and not distributed.is_main()
    assert config.global_batch_size == 8 * 2 * 4
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert config.global_batch_size == 16
