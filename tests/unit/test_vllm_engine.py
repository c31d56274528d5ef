"""The process policies of the one vLLM wrapper: the start-up heap (frozen_imports), the allocator
(retain_freed_memory), the start-up environment, and what close() does with real vLLM engines
(w2s.vllm_compat, the only place that names vLLM's private attributes)."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import platform
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest
from conftest import ROOT

from w2s import vllm_compat, vllm_engine
from w2s.vllm_engine import VLLMEngine, frozen_imports


@pytest.fixture(autouse=True)
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.enable()


def _frozen(objects: list) -> bool:
    """True if every one of ``objects`` is in the frozen (permanent) generation: gc.get_objects() lists
    the objects of the collected generations only."""
    collected = {id(obj) for obj in gc.get_objects()}
    assert all(gc.is_tracked(obj) for obj in objects)  # untracked objects are never in either
    return not any(id(obj) in collected for obj in objects)


def test_the_block_runs_without_the_collector_and_what_it_made_is_frozen_after():
    made_before = [[i] for i in range(100)]
    with frozen_imports():
        assert not gc.isenabled()
        made_inside = [[i] for i in range(100)] + [SimpleNamespace(i=i) for i in range(100)]
        assert gc.get_freeze_count() == 0  # nothing frozen while the block runs
    assert gc.isenabled()
    assert _frozen(made_before) and _frozen(made_inside)
    gc.unfreeze()
    assert gc.get_freeze_count() == 0 and not _frozen(made_inside)


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


# --------------------------------------------------------------------------- start-up environment


def test_engines_start_without_usage_reports_unless_the_user_says(monkeypatch):
    monkeypatch.delenv("VLLM_NO_USAGE_STATS", raising=False)
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    assert VLLMEngine._start_environment(1.5, True) == {
        "VLLM_CPU_KVCACHE_SPACE": "2",
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "VLLM_NO_USAGE_STATS": "1",
    }
    monkeypatch.setenv("VLLM_NO_USAGE_STATS", "0")
    assert "VLLM_NO_USAGE_STATS" not in VLLMEngine._start_environment(1.5, False)


# --------------------------------------------------------------------------- vllm_compat without an engine


@pytest.mark.parametrize(
    ("version", "written_for"),
    [("0.32.0", True), ("0.32.3rc1", True), ("0.33.0", False), ("0.3.2", False), ("1.32.0", False)],
)
def test_the_private_attribute_code_is_used_only_on_the_version_it_was_written_for(version, written_for):
    assert vllm_compat.written_for(version) is written_for


def test_the_installed_vllm_is_the_version_the_compat_code_was_written_for():
    """Fails on a vLLM upgrade: re-read vllm/v1/engine/core_client.py, then move WRITTEN_FOR."""
    vllm = pytest.importorskip("vllm")
    assert vllm_compat.written_for(vllm.__version__), vllm.__version__


class _LLMWithShutdown:
    def __init__(self):
        self.shutdowns = 0

    def shutdown(self):
        self.shutdowns += 1


def test_another_vllm_version_gets_the_public_shutdown_or_garbage_collection(monkeypatch, caplog):
    monkeypatch.setattr(vllm_compat, "_installed_version", lambda: "0.40.1")
    llm = _LLMWithShutdown()  # no llm_engine: any private-attribute access would raise
    assert vllm_compat.close(llm, leave_to_exit=True) == vllm_compat.PUBLIC_SHUTDOWN
    assert llm.shutdowns == 1
    with caplog.at_level(logging.WARNING, logger="w2s.vllm_compat"):
        assert vllm_compat.close(object(), leave_to_exit=False) == vllm_compat.UNREFERENCED
    assert "0.40.1" in caplog.text and "garbage-collected" in caplog.text


def _receiver(seconds_after_stop: float) -> tuple[SimpleNamespace, threading.Event]:
    """A client with an output thread like vLLM's: it stops on a signal, then frees its last outputs."""
    stop = threading.Event()

    def receive_outputs():
        stop.wait()
        time.sleep(seconds_after_stop)

    thread = threading.Thread(target=receive_outputs, daemon=True)
    thread.start()
    return SimpleNamespace(output_queue_thread=thread), stop


def test_the_output_thread_is_waited_for(caplog):
    """vLLM's shutdown only signals that thread; left running, interpreter exit aborts the process."""
    client, stop = _receiver(0.3)
    stop.set()
    with caplog.at_level(logging.WARNING, logger="w2s.vllm_compat"):
        vllm_compat.join_output_thread(client, timeout_s=30)
    assert not client.output_queue_thread.is_alive()
    assert caplog.records == []


def test_an_output_thread_alive_after_the_timeout_is_a_warning(caplog):
    client, stop = _receiver(0.0)  # never signalled: still running at the timeout
    with caplog.at_level(logging.WARNING, logger="w2s.vllm_compat"):
        vllm_compat.join_output_thread(client, timeout_s=0.05)
    stop.set()
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "still running" in caplog.text


# --------------------------------------------------------------------------- close() with real engines


def _start(checkpoint, *, in_process: bool, process_exits: bool) -> VLLMEngine:
    return VLLMEngine(
        "(test)",
        kv_cache_gb=1,
        in_process=in_process,
        process_exits=process_exits,
        model=str(checkpoint),
        runner="pooling",
        dtype="float32",
        max_model_len=32,
        max_num_seqs=4,
        max_num_batched_tokens=128,
        enforce_eager=True,
        seed=0,
        skip_tokenizer_init=True,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("process_exits", "cpu", "expected"),
    [
        (True, True, vllm_compat.DETACHED),  # a CPU job: left to the exit
        (True, False, vllm_compat.SHUTDOWN),  # a GPU job: NCCL groups and caches are torn down
        (False, True, vllm_compat.SHUTDOWN),  # a process that goes on
    ],
    ids=["cpu-job", "gpu-job", "no-job"],
)
def test_an_in_process_engine_is_left_to_the_exit_only_in_a_cpu_job(
    tiny_classifier, monkeypatch, process_exits, cpu, expected
):
    """Against vLLM's own in-process client: its teardown (EngineCore.shutdown) runs at close, or not
    at all (its exit finalizer detached). The allocator policy is a job's only."""
    from vllm.v1.engine.core import EngineCore

    teardowns, allocator_policies = [], []
    real_shutdown = EngineCore.shutdown
    monkeypatch.setattr(EngineCore, "shutdown", lambda core: (teardowns.append(core), real_shutdown(core)))
    monkeypatch.setattr(vllm_engine, "retain_freed_memory", lambda: allocator_policies.append(1))
    engine = _start(tiny_classifier, in_process=True, process_exits=process_exits)
    client = vllm_compat.engine_client(engine.llm)
    assert vllm_compat.is_in_process(client)
    assert len(allocator_policies) == process_exits
    monkeypatch.setattr(vllm_compat, "on_cpu", lambda: cpu)  # what vLLM's platform says on a GPU node
    try:
        assert engine.close() == expected
        assert not client._finalizer.alive  # nothing of it runs again at exit
        assert len(teardowns) == (0 if expected == vllm_compat.DETACHED else 1)
        assert (gc.get_freeze_count() > 0) is process_exits  # a job's heap is frozen for the exit
    finally:
        if not teardowns:
            real_shutdown(client.engine_core)  # what the exit would do; later engines in this process need it


@pytest.mark.slow
def test_engine_processes_are_stopped_even_when_this_process_exits(tiny_classifier):
    """A client of spawned engine processes is never left to the exit, whatever the device."""
    engine = _start(tiny_classifier, in_process=False, process_exits=True)
    client = vllm_compat.engine_client(engine.llm)
    assert not vllm_compat.is_in_process(client)
    engine_processes = multiprocessing.active_children()
    assert engine_processes
    assert engine.close() == vllm_compat.SHUTDOWN
    assert not client.output_queue_thread.is_alive()
    for process in engine_processes:  # terminated, or killed after vLLM's grace period
        process.join(30)
        assert not process.is_alive()


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
