# Reasoning step 1: a task's problems, split by seed into train (students learn from their samples)
# and test (every generator is evaluated on).


localrules:
    reasoning_problems,


rule reasoning_problems:
    output:
        problems=R_PROBLEMS,
        manifest=R_PROBLEMS_MANIFEST,
    log:
        R_LOG("problems"),
    conda:
        R_CONDA_ENV
    resources:
        mem_mb=2000,
    params:
        task=lambda w: w.task,
        seed=lambda w: w.seed,
        spec=lambda w: as_json(REASONING["tasks"][w.task]),
        code=code_hash("reasoning_problems"),
        out_dir=lambda w, output: os.path.dirname(output.manifest),
    shell:
        "w2s reasoning-problems --task {params.task} --seed {params.seed}"
        " --spec {params.spec:q} --out-dir {params.out_dir} > {log} 2>&1"
