# Reasoning step 5: the ceiling and the students, SFT and/or DPO from the strong model (GPU jobs).


rule reasoning_train:
    input:
        rules.reasoning_train_set.output,
    output:
        directory(R_MODEL),
    log:
        R_LOG("train", "{generator}"),
    benchmark:
        R_BENCHMARK("train", "{generator}")
    wildcard_constraints:
        generator=name_pattern(R_TRAINED),
    conda:
        R_CONDA_ENV
    threads: stage_threads(CFG, "reasoning_train")
    resources:
        **rule_resources(CFG, "reasoning_train"),
    params:
        checkpoint=lambda w: model_reference(CFG, REASONING["strong"]["model"]),
        settings=as_json(REASONING["train"]),
        prompt=lambda w: as_json(reasoning_plan.sampling(CFG, w.generator)["prompt"]),
        seed=lambda w: w.seed,
        device=CFG["device"],
        code=code_hash("reasoning_train"),
    shell:
        "w2s --threads {threads} reasoning-train --checkpoint {params.checkpoint:q}"
        " --train-set {input} --settings {params.settings:q} --prompt {params.prompt:q}"
        " --seed {params.seed} --device {params.device} --out-dir {output} > {log} 2>&1"
