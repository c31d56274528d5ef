# The generative reasoning track's helpers (its grid, R_BASE and R_TRAINED, is in ../common.smk; its
# paths, R_*, in w2s/paths.py). Included only when the config has a `reasoning` section.
# problems -> samples (vLLM) -> verifier scores -> student train sets -> SFT/DPO students and
# ceiling -> their test samples -> metrics. Logic lives in w2s.reasoning.

# The software environment, seen from this folder (conda paths are relative to the rule's file).
R_CONDA_ENV = "../../../envs/cuda.yaml"
R_VERIFIERS = REASONING["verifiers"]
R_EVALUATION = REASONING["evaluation"]


def reasoning_metrics_files(wildcards):
    return expand(R_METRICS, task=REASONING["tasks"], seed=CFG["seeds"])


def reasoning_train_set_inputs(wildcards):
    method = reasoning_plan.trained_models(CFG)[wildcards.generator]
    inputs = {
        f"samples_{g}": R_SAMPLES.format(task=wildcards.task, seed=wildcards.seed, generator=g)
        for g in reasoning_plan.train_set_inputs(CFG, wildcards.generator)
    }
    if reasoning_plan.reads_weak_scores(method):
        inputs["weak_scores"] = R_SCORES.format(task=wildcards.task, seed=wildcards.seed, generator="weak")
    return inputs


def reasoning_sample_args(wildcards, input):
    return " ".join(f"{key[len('samples_'):]}={path}" for key, path in input.items() if key.startswith("samples_"))


def reasoning_generator_files(wildcards):
    files = {}
    for g in reasoning_plan.generators(CFG):
        files[f"samples_{g}"] = R_SAMPLES.format(task=wildcards.task, seed=wildcards.seed, generator=g)
        files[f"scores_{g}"] = R_SCORES.format(task=wildcards.task, seed=wildcards.seed, generator=g)
    return files


def reasoning_generator_specs(wildcards, input):
    return as_json(
        {
            g: {
                "role": reasoning_plan.role(CFG, g),
                "samples": input[f"samples_{g}"],
                "scores": input[f"scores_{g}"],
                "uses_gold": reasoning_plan.student_uses_gold(CFG, g),
            }
            for g in reasoning_plan.generators(CFG)
        }
    )


def reasoning_n_arg(wildcards):
    """``--n`` of a sampling job: SPLIT=N for each split the generator samples."""
    per_split = reasoning_plan.samples_per_split(CFG, wildcards.generator)
    return " ".join(f"{split}={n}" for split, n in per_split.items())


def reasoning_sampling_arg(wildcards):
    return as_json(reasoning_plan.sampling(CFG, wildcards.generator))


def reasoning_engine(rule):
    """vLLM settings of a sampling rule's jobs: tensor parallelism over every GPU the job is granted."""
    return as_json({**REASONING.get("engine", {}), "tensor_parallel_size": tensor_parallel_size(CFG, rule)})


def reasoning_sample_provenance(wildcards):
    """Base generators' samples name their store key; trained generators' samples are never shared."""
    shared = LABEL_STORE and wildcards.generator in R_BASE
    key = store_key("reasoning_samples")(wildcards) if shared else None
    return as_json({"task": wildcards.task, "seed": int(wildcards.seed), "store_key": key})
