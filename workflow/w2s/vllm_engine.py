"""The one wrapper around ``vllm.LLM`` for every stage that runs vLLM: labeling (``classify`` with a
pooling runner) and reasoning generation (``generate``).

It owns what both need and vLLM leaves to the caller: a clear error when vllm cannot be imported,
the CPU start-up environment (KV-cache size, the engine core in this process or in its own), a
start-up that does not make the garbage collector rescan vLLM's imports (:func:`frozen_imports`),
a shutdown of the engine core on close, and the repair of what an in-process engine changes in this
process (vLLM's CPU worker replaces ``torch.set_num_threads`` with a no-op and freezes its
environment variables), so a later engine in the same process starts clean.
"""

from __future__ import annotations

import contextlib
import gc
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
        try:
            with environment(vllm_cpu_environment(kv_cache_gb, in_process)):
                self.llm = llm_class(**llm_kwargs)
        except Exception as error:
            self._restore_process()
            raise RuntimeError(
                f"the vLLM engine could not start for {str(llm_kwargs.get('model'))!r} "
                f"({type(error).__name__}: {error}); {hint}"
            ) from error

    def close(self) -> None:
        llm, self.llm = self.llm, None
        if llm is not None:
            core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
            if core is not None and hasattr(core, "shutdown"):
                core.shutdown()
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
