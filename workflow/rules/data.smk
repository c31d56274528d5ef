# Stage 1: load a task, validate it, and split it into disjoint weak_train/transfer/val/test.


rule prepare_data:
    output:
        splits=[fill(DATA_SPLIT, split=split) for split in SPLITS],
        manifest=DATA_MANIFEST,
    log:
        LOG("prepare_data"),
    conda:
        CONDA_ENV
    resources:
        mem_mb=4000,
    params:
        task=lambda w: w.task,
        seed=lambda w: w.seed,
        spec=lambda w: as_json(task_spec(CFG, w.task)),
        code=code_hash("prepare_data"),
        # the task's source: its name and, for a plugin task, its file's hash or package version
        extensions=lambda w: as_json(code_identity(task_extensions(CFG, w.task))),
        plugins=lambda w: plugin_args(task_extensions(CFG, w.task)),
        out_dir=lambda w, output: os.path.dirname(output.manifest),
    shell:
        "w2s {params.plugins} prepare-data --task {params.task} --seed {params.seed} --spec {params.spec:q}"
        " --out-dir {params.out_dir} > {log} 2>&1"
