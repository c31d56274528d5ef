# Stage 3: the weak teacher labels transfer and test with vLLM; soft labels + provenance in Parquet.


rule label_weak:
    wildcard_constraints:
        weak=TEACHERS,
    input:
        model="results/{task}/seed{seed}/weak/{weak}/model",
        transfer="results/{task}/seed{seed}/data/transfer.parquet",
        test="results/{task}/seed{seed}/data/test.parquet",
    output:
        transfer="results/{task}/seed{seed}/weak/{weak}/labels/transfer.parquet",
        test="results/{task}/seed{seed}/weak/{weak}/labels/test.parquet",
    params:
        code=code_hash("label_weak"),
        # vLLM shards the teacher over every GPU the job is granted.
        settings=as_json(
            {**CFG["labeling"], "tensor_parallel_size": tensor_parallel_size(CFG)}
        ),
        provenance=lambda w: as_json(
            {
                "task": w.task,
                "seed": int(w.seed),
                "weak_model": w.weak,
                "store_key": weak_label_key(w),
            }
        ),
    conda:
        CONDA_ENV
    log:
        "results/logs/{task}/seed{seed}/label_weak/{weak}.log",
    benchmark:
        "results/benchmarks/{task}/seed{seed}/label_weak/{weak}.tsv"
    threads: stage_threads(CFG, "label_weak")
    resources:
        **rule_resources(CFG, "label_weak"),
    shell:
        "w2s --threads {threads} label --checkpoint {input.model}"
        " --inputs transfer={input.transfer} test={input.test}"
        " --outputs transfer={output.transfer} test={output.test}"
        " --settings {params.settings:q} --provenance {params.provenance:q} > {log} 2>&1"
