"""The process policies of the one vLLM wrapper, without vLLM: the start-up heap (frozen_imports), the
allocator (retain_freed_memory) and what close() tears down."""

from __future__ import annotations

import gc
import platform
import subprocess
import sys
import threading
import time
import weakref

import pytest

from conftest import ROOT
from w2s.vllm_engine import VLLMEngine, frozen_imports


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


class _EngineCore:
    """vLLM's in-process client as close() sees it: shutdown(), and the finalizer that runs it at exit."""

    def __init__(self):
        self.shutdowns = 0
        self._finalizer = weakref.finalize(self, lambda: None)

    def shutdown(self):
        self.shutdowns += 1


def _engine(in_process: bool) -> tuple[VLLMEngine, _EngineCore]:
    core = _EngineCore()
    engine = VLLMEngine.__new__(VLLMEngine)  # the wrapper's state after a start, without starting vLLM
    engine.llm = type("LLM", (), {"llm_engine": type("LLMEngine", (), {"engine_core": core})()})()
    engine.in_process = in_process
    engine._restore_process = lambda: None  # what it undoes is tested with real engines (test_generation)
    return engine, core


def test_close_shuts_the_engine_core_down():
    engine, core = _engine(in_process=True)
    engine.close()
    assert core.shutdowns == 1 and engine.llm is None


def test_a_process_that_exits_leaves_an_in_process_engine_to_the_exit():
    engine, core = _engine(in_process=True)
    engine.close(process_exits=True)
    assert core.shutdowns == 0
    assert not core._finalizer.alive  # nor does vLLM's teardown run at exit
    assert engine.llm is None


def test_engine_processes_are_stopped_even_when_this_process_exits():
    engine, core = _engine(in_process=False)
    engine.close(process_exits=True)
    assert core.shutdowns == 1


def test_close_waits_for_the_thread_that_receives_the_outputs():
    """vLLM's shutdown only signals that thread; left running, interpreter exit aborts the process."""
    engine, core = _engine(in_process=False)
    stop = threading.Event()

    def receive_outputs():  # like vLLM's: stops on the shutdown signal, then frees its last outputs
        stop.wait()
        time.sleep(0.3)

    core.output_queue_thread = threading.Thread(target=receive_outputs, daemon=True)
    core.output_queue_thread.start()
    core.shutdown = stop.set
    engine.close(process_exits=True)
    assert not core.output_queue_thread.is_alive()


_GROWING_BLOCKS = """
import ctypes, sys
from w2s.vllm_engine import retain_freed_memory

class MallInfo2(ctypes.Structure):  # glibc's mallinfo2(): hblkhd = bytes in mmapped blocks
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
if sys.argv[1] == "retain":
    assert retain_freed_memory() is True
mmapped = 0
for megabytes in (4, 8, 12, 16, 20, 24):  # an engine step's activations: a new, larger size each time
    before = libc.mallinfo2().hblkhd
    block = libc.malloc(megabytes << 20)
    mmapped += libc.mallinfo2().hblkhd > before
    libc.free(block)
print(mmapped)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc allocator policy")
@pytest.mark.parametrize(("policy", "mmapped"), [("default", 6), ("retain", 0)])
def test_freed_blocks_stay_in_the_heap_for_reuse(policy, mmapped):
    # In a fresh interpreter each: the policy lasts for the process.
    env = {"PYTHONPATH": str(ROOT / "workflow"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", _GROWING_BLOCKS, policy], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == mmapped
