"""Multi-GPU students: the accelerate launch that reasoning-train builds for several GPUs (tested without
a GPU), and a Slurm dry run in which a reasoning_train job asks for four GPUs."""

from __future__ import annotations

from pathlib import Path

import yaml
from conftest import snakemake

from w2s.cli import build_parser
from w2s.reasoning.launch import LAUNCHED, fsdp_config, launch_command, should_relaunch, train_argv, train_backend

ROOT = Path(__file__).resolve().parents[2]
ARGV = [
    "--threads",
    "8",
    "reasoning-train",
    "--checkpoint",
    "builtin:SmolLM2-135M-Instruct",
    "--train-set",
    "sets/ceiling.parquet",
    "--settings",
    '{"lr": 1e-05}',
    "--prompt",
    "{}",
    "--seed",
    "3",
    "--device",
    "auto",
    "--out-dir",
    "models/ceiling",
]


def test_train_argv_reproduces_the_command_line():
    assert train_argv(build_parser().parse_args(ARGV)) == ARGV


def test_launch_command_for_four_gpus_runs_one_w2s_process_per_gpu():
    command = launch_command(ARGV, 4, "/tmp/fsdp.yaml", port=29617, python="/venv/bin/python")
    assert command == [
        "/venv/bin/python",
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        "/tmp/fsdp.yaml",
        "--num_processes",
        "4",
        "--main_process_port",
        "29617",
        "-m",
        "w2s",
        *ARGV,
    ]


def test_fsdp_config_shards_over_every_gpu_and_saves_a_full_state_dict():
    config = fsdp_config(4)
    assert config["distributed_type"] == "FSDP" and config["num_processes"] == 4 and config["num_machines"] == 1
    assert config["fsdp_config"]["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    assert config["fsdp_config"]["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert yaml.safe_load(yaml.safe_dump(config)) == config
    # trl precomputes DPO reference log-probs before FSDP shards the model: every rank needs the weights.
    assert config["fsdp_config"]["fsdp_cpu_ram_efficient_loading"] is False
    assert config["use_cpu"] is False and fsdp_config(2, cpu=True)["use_cpu"] is True  # the CPU run of the tests


def test_only_a_first_trl_process_with_several_gpus_relaunches():
    assert should_relaunch("trl", "auto", 4, environ={})
    assert not should_relaunch("trl", "auto", 1, environ={})
    assert not should_relaunch("loop", "auto", 4, environ={})
    assert not should_relaunch("trl", "cpu", 4, environ={})
    assert not should_relaunch("trl", "auto", 4, environ={LAUNCHED: "1"})
    assert not should_relaunch("trl", "auto", 4, environ={"LOCAL_RANK": "2"})
    assert train_backend({}) == "trl" and train_backend({"backend": "loop"}) == "loop"


def test_reasoning_train_without_gpus_does_not_relaunch(monkeypatch):
    import w2s.reasoning.launch as launch

    monkeypatch.setattr(launch.subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(AssertionError("launched")))
    assert not launch.relaunch_if_several_gpus(build_parser().parse_args(ARGV))  # no CUDA device here


def test_slurm_dry_run_asks_for_four_gpus_for_a_reasoning_train_job(tmp_path):
    config = yaml.safe_load((ROOT / "examples" / "reasoning_cpu.yaml").read_text())
    config["resources"] = {"reasoning_train": {"gpus": 4}}
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    result = snakemake(
        tmp_path,
        "--profile",
        str(ROOT / "profiles" / "slurm"),
        "--dry-run",
        "--replace-workflow-config",
        configfile=configfile,
    )
    jobs = result.stdout.split("\nrule ")
    train_jobs = [job for job in jobs if job.startswith("reasoning_train:")]
    assert train_jobs, result.stdout
    for job in train_jobs:
        resources = next(line for line in job.splitlines() if line.strip().startswith("resources:"))
        assert "gpu=4," in resources + "," and "slurm_partition=gpu" in resources
        assert "reasoning-train" in job and '"backend":"trl"' in job  # the command that relaunches itself
