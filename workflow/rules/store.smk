# The shared weak-label store (config `label_store`). When a valid entry exists for a weak
# teacher's content key, fetch_weak_labels copies it in and no teacher or labeling job runs;
# otherwise its input names a file no rule makes, Snakemake falls back to label_weak, and
# publish_weak_labels adds the new labels to the store.


localrules:
    fetch_weak_labels,
    publish_weak_labels,


ruleorder: fetch_weak_labels > label_weak


rule fetch_weak_labels:
    wildcard_constraints:
        weak=TEACHERS,
    input:
        unpack(store_fetch_inputs),
    output:
        transfer="results/{task}/seed{seed}/weak/{weak}/labels/transfer.parquet",
        test="results/{task}/seed{seed}/weak/{weak}/labels/test.parquet",
    params:
        store=LABEL_STORE,
        key=weak_label_key,
    conda:
        CONDA_ENV
    log:
        "results/logs/{task}/seed{seed}/fetch_weak_labels/{weak}.log",
    resources:
        mem_mb=1000,
    shell:
        "w2s store-fetch --store {params.store:q} --key {params.key} --manifest {input.manifest}"
        " --outputs transfer.parquet={output.transfer} test.parquet={output.test} > {log} 2>&1"


rule publish_weak_labels:
    wildcard_constraints:
        weak=TEACHERS,
    input:
        manifest="results/{task}/seed{seed}/data/manifest.json",
        transfer="results/{task}/seed{seed}/weak/{weak}/labels/transfer.parquet",
        test="results/{task}/seed{seed}/weak/{weak}/labels/test.parquet",
    output:
        "results/{task}/seed{seed}/weak/{weak}/labels/store_entry.json",
    params:
        store=LABEL_STORE,
        key=weak_label_key,
        key_inputs=lambda w: as_json(weak_label_key_inputs(CFG, w.task, w.seed, w.weak)),
    conda:
        CONDA_ENV
    log:
        "results/logs/{task}/seed{seed}/publish_weak_labels/{weak}.log",
    resources:
        mem_mb=1000,
    shell:
        "w2s store-publish --store {params.store:q} --key {params.key}"
        " --key-inputs {params.key_inputs:q} --manifest {input.manifest}"
        " --files transfer.parquet={input.transfer} test.parquet={input.test} --out {output} > {log} 2>&1"
