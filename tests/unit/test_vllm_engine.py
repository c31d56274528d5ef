"""The start-up heap policy of the one vLLM wrapper (w2s.vllm_engine.frozen_imports), without vLLM."""

from __future__ import annotations

import gc

import pytest

from w2s.vllm_engine import frozen_imports


@pytest.fixture(autouse=True)
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.enable()


def test_the_block_runs_without_the_collector_and_its_heap_is_frozen_after():
    kept = [[i] for i in range(1000)]  # tracked objects that exist before the block
    with frozen_imports():
        assert not gc.isenabled()
        made_inside = [{"i": i} for i in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(kept) + len(made_inside)
    gc.unfreeze()
    assert gc.get_freeze_count() == 0


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    with frozen_imports():
        pass
    assert not gc.isenabled()


def test_a_failed_import_freezes_nothing_and_turns_the_collector_back_on():
    with pytest.raises(ImportError, match="no vllm here"):
        with frozen_imports():
            raise ImportError("no vllm here")
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
