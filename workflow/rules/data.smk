# Stage 1: load a task, validate it, and split it into disjoint weak_train/transfer/val/test.


rule prepare_data:
    output:
        splits=[fill(DATA_SPLIT, split=split) for split in SPLITS],
        manifest=DATA_MANIFEST,
    params:
        task=lambda w: w.task,
        seed=lambda w: w.seed,
        spec=lambda w: as_json(task_spec(CFG, w.task)),
        code=code_hash("prepare_data"),
        out_dir=lambda w, output: os.path.dirname(output.manifest),
    conda:
        CONDA_ENV
    log:
        LOG("prepare_data"),
    resources:
        mem_mb=4000,
    shell:
        "w2s prepare-data --task {params.task} --seed {params.seed} --spec {params.spec:q}"
        " --out-dir {params.out_dir} > {log} 2>&1"
