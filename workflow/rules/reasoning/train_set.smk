# Reasoning step 4: each trained generator's SFT/DPO train set, chosen from the base generators'
# samples by its method (and the weak verifiers' scores, for verifier-filtered methods).


localrules:
    reasoning_train_set,


rule reasoning_train_set:
    input:
        unpack(reasoning_train_set_inputs),
        problems=rules.reasoning_problems.output.problems,
    output:
        R_TRAIN_SET,
    log:
        R_LOG("train_set", "{generator}"),
    wildcard_constraints:
        generator=name_pattern(R_TRAINED),
    conda:
        R_CONDA_ENV
    resources:
        mem_mb=2000,
    params:
        method=lambda w: as_json(reasoning_plan.trained_models(CFG)[w.generator]),
        samples=reasoning_sample_args,
        weak_scores=lambda w, input: (f"--weak-scores {input.weak_scores}" if "weak_scores" in input.keys() else ""),
        settings=as_json(
            {
                "threshold": R_VERIFIERS["threshold"],
                "pairs_per_problem": REASONING["pairs_per_problem"],
            }
        ),
        code=code_hash("reasoning_train_set"),
    shell:
        "w2s reasoning-train-set --method {params.method:q} --problems {input.problems}"
        " --samples {params.samples} {params.weak_scores} --settings {params.settings:q}"
        " --out {output} > {log} 2>&1"
