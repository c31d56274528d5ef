# Stage 3: the weak teacher labels transfer and test with vLLM; soft labels + provenance in Parquet.


rule label_weak:
    input:
        model=TEACHER_MODEL,
        transfer=fill(DATA_SPLIT, split="transfer"),
        test=fill(DATA_SPLIT, split="test"),
    output:
        transfer=fill(WEAK_LABELS, split="transfer"),
        test=fill(WEAK_LABELS, split="test"),
    log:
        LOG("label_weak", "{weak}"),
    benchmark:
        BENCHMARK("label_weak", "{weak}")
    wildcard_constraints:
        weak=TEACHERS,
    conda:
        CONDA_ENV
    threads: stage_threads(CFG, "label_weak")
    resources:
        **rule_resources(CFG, "label_weak"),
    params:
        code=code_hash("label_weak"),
        # vLLM shards the teacher over every GPU the job is granted.
        settings=as_json({**CFG["labeling"], "tensor_parallel_size": tensor_parallel_size(CFG)}),
        provenance=lambda w: as_json(
            {
                "task": w.task,
                "seed": int(w.seed),
                "weak_model": w.weak,
                "store_key": store_key("weak_labels")(w),
            }
        ),
    shell:
        "w2s --threads {threads} label-weak --checkpoint {input.model}"
        " --inputs transfer={input.transfer} test={input.test}"
        " --outputs transfer={output.transfer} test={output.test}"
        " --settings {params.settings:q} --provenance {params.provenance:q} > {log} 2>&1"
