# Stage 2: fine-tune the weak teacher on weak_train ground truth (a GPU job on a cluster).


rule train_weak:
    wildcard_constraints:
        weak=TEACHERS,
    input:
        manifest="results/{task}/seed{seed}/data/manifest.json",
        train="results/{task}/seed{seed}/data/weak_train.parquet",
        val="results/{task}/seed{seed}/data/val.parquet",
    output:
        model=directory("results/{task}/seed{seed}/weak/{weak}/model"),
    params:
        model_ref=lambda w: model_reference(CFG, w.weak),
        settings=lambda w: as_json(teacher_train_settings(CFG, w.weak)),
        code=code_hash("train_weak"),
        seed=teacher_seed,
        device=CFG["device"],
        data_dir=lambda w, input: os.path.dirname(input.manifest),
    conda:
        CONDA_ENV
    log:
        "results/logs/{task}/seed{seed}/train_weak/{weak}.log",
    benchmark:
        "results/benchmarks/{task}/seed{seed}/train_weak/{weak}.tsv"
    threads: stage_threads(CFG, "train_weak")
    resources:
        **rule_resources(CFG, "train_weak"),
    shell:
        "w2s --threads {threads} train-teacher --data-dir {params.data_dir}"
        " --checkpoint {params.model_ref:q} --settings {params.settings:q} --seed {params.seed}"
        " --device {params.device} --out-dir {output.model} > {log} 2>&1"
