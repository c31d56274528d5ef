# Stage 2: fine-tune the weak teacher on weak_train ground truth (a GPU job on a cluster).


rule train_weak:
    input:
        manifest=DATA_MANIFEST,
        train=fill(DATA_SPLIT, split="weak_train"),
        val=fill(DATA_SPLIT, split="val"),
    output:
        model=directory(TEACHER_MODEL),
    log:
        LOG("train_weak", "{weak}"),
    benchmark:
        BENCHMARK("train_weak", "{weak}")
    wildcard_constraints:
        weak=TEACHERS,
    conda:
        CONDA_ENV
    threads: stage_threads(CFG, "train_weak")
    resources:
        **rule_resources(CFG, "train_weak"),
    params:
        model_ref=lambda w: model_reference(CFG, w.weak),
        settings=lambda w: as_json(teacher_train_settings(CFG, w.weak)),
        code=code_hash("train_weak"),
        seed=teacher_seed,
        device=CFG["device"],
    shell:
        "w2s --threads {threads} train-weak --train {input.train} --val {input.val}"
        " --manifest {input.manifest} --checkpoint {params.model_ref:q} --settings {params.settings:q}"
        " --seed {params.seed} --device {params.device} --out-dir {output.model} > {log} 2>&1"
