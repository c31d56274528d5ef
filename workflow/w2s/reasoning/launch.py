"""Multi-GPU students: ``reasoning-train`` re-launches itself under ``accelerate launch`` with FSDP.

A reasoning_train job granted several GPUs (``resources.reasoning_train.gpus`` on Slurm) starts one
process that sees them all. With the trl backend, that process writes an FSDP config (the shape of
trl's ``accelerate_configs/fsdp2.yaml``: FSDP2, transformer-layer wrapping, full state dict for saving)
and runs the same command once per GPU under ``accelerate launch``; trl's trainers then train sharded,
and rank 0 writes the checkpoint. The command and config are built by pure functions; the whole launch
(processes, data sharding, gather and save) also runs in the tests on two CPU processes, where
accelerate trains them as DDP ranks over gloo (it enables FSDP only on accelerators).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from ..schema import schema_defaults

log = logging.getLogger(__name__)
LAUNCHED = "W2S_ACCELERATE_LAUNCHED"  # set in the launched processes, so they never launch again


def fsdp_config(n_gpus: int, mixed_precision: str = "bf16", cpu: bool = False) -> dict:
    """The accelerate config of an FSDP run on ``n_gpus`` GPUs of one node.

    Every rank loads the full weights (``fsdp_cpu_ram_efficient_loading`` off): trl's DPO trainer
    precomputes the reference log-probabilities before FSDP shards the model, and with the efficient
    loading only rank 0 holds real weights until then, so the other ranks' reference values come from
    an unloaded model. ``cpu`` runs the same launch on CPU processes (gloo); accelerate enables FSDP only
    on accelerators, so there the processes train as plain data-parallel (DDP) ranks.
    """
    return {
        "compute_environment": "LOCAL_MACHINE",
        "distributed_type": "FSDP",
        "num_machines": 1,
        "machine_rank": 0,
        "num_processes": n_gpus,
        "mixed_precision": mixed_precision,
        "rdzv_backend": "static",
        "same_network": True,
        "use_cpu": cpu,
        "fsdp_config": {
            "fsdp_version": 2,
            "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "fsdp_cpu_ram_efficient_loading": False,
            "fsdp_offload_params": False,
            "fsdp_reshard_after_forward": True,
            "fsdp_state_dict_type": "FULL_STATE_DICT",
            "fsdp_activation_checkpointing": False,
        },
    }


def train_argv(args: argparse.Namespace) -> list[str]:
    """The ``w2s`` arguments that rerun this reasoning-train command as it was given."""
    argv = [] if args.threads is None else ["--threads", str(args.threads)]
    return argv + [
        "reasoning-train",
        "--checkpoint",
        args.checkpoint,
        "--train-set",
        args.train_set,
        "--settings",
        args.settings,
        "--prompt",
        args.prompt,
        "--seed",
        str(args.seed),
        "--device",
        args.device,
        "--out-dir",
        args.out_dir,
    ]


def launch_command(
    argv: list[str], n_gpus: int, config_file: str | Path, port: int, python: str = sys.executable
) -> list[str]:
    """``accelerate launch`` of ``python -m w2s <argv>``, one process per GPU."""
    return [
        python,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(config_file),
        "--num_processes",
        str(n_gpus),
        "--main_process_port",
        str(port),
        "-m",
        "w2s",
        *argv,
    ]


def should_relaunch(backend: str, device: str, n_gpus: int, environ: dict | os._Environ = os.environ) -> bool:
    """Several visible CUDA devices, the trl backend, and not already a launched process."""
    launched = LAUNCHED in environ or "LOCAL_RANK" in environ
    return backend == "trl" and device != "cpu" and n_gpus > 1 and not launched


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def train_backend(settings: dict) -> str:
    """The backend reasoning.train settings choose (the schema's default when left out)."""
    return settings.get("backend") or schema_defaults("reasoning.train")["backend"]


def relaunch_if_several_gpus(args: argparse.Namespace) -> bool:
    """Run this command under ``accelerate launch`` when it sees several GPUs; True when it did."""
    import torch

    n_gpus = torch.cuda.device_count()
    if not should_relaunch(train_backend(json.loads(args.settings)), args.device, n_gpus):
        return False
    run_launched(args, n_gpus, fsdp_config(n_gpus))
    return True


def run_launched(args: argparse.Namespace, n_processes: int, config: dict) -> None:
    """Run this reasoning-train command in ``n_processes`` processes under ``accelerate launch`` with
    ``config`` (an ``fsdp_config``); raises if any process fails."""
    import yaml

    with tempfile.TemporaryDirectory(prefix="w2s-accelerate-") as tmp:
        config_file = Path(tmp) / "fsdp.yaml"
        config_file.write_text(yaml.safe_dump(config))
        command = launch_command(train_argv(args), n_processes, config_file, _free_port())
        log.info("%d processes: %s", n_processes, " ".join(command))
        subprocess.run(command, check=True, env={**os.environ, LAUNCHED: "1"})
