# The label store (config `label_store`) as one stage: it holds two kinds of artifact, a weak teacher's
# labels and a reasoning base generator's samples, each under the key w2s.store_keys computes.
# store_fetch and store_publish are defined once here and used per artifact kind, as
# store_{fetch,publish}_<artifact>; a rule's named files are the entry's files (<name>.parquet).
# Hit: the store holds a valid entry for the key, so store_fetch_<artifact> copies it in and its
# producer (label_weak, reasoning_sample_base) does not run. Miss: the fetch input names a file no
# rule makes, Snakemake falls back to the producer, and store_publish_<artifact> adds the entry.
# A fetch checks that the entry was computed at the precision this run's settings resolve to, and
# refuses it otherwise (nothing copied). `auto` resolves by the device, so a fetch is a job that asks
# for the producer's GPUs (on Slurm: in the GPU partition, like its producer), never a login-node rule.

# Its helpers (keys, the miss logic, targets) are in common.smk, under "the label store".


localrules:
    store_publish_weak_labels,


ruleorder: store_fetch_weak_labels > label_weak


rule store_fetch_weak_labels:
    input:
        unpack(store_fetch_inputs("weak_labels")),
    output:
        transfer=fill(WEAK_LABELS, split="transfer"),
        test=fill(WEAK_LABELS, split="test"),
    log:
        LOG("store_fetch_weak_labels", "{weak}"),
    wildcard_constraints:
        weak=TEACHERS,
    conda:
        CONDA_ENV
    resources:
        gpu=store_fetch_gpus("weak_labels"),
        mem_mb=2000,
        runtime=15,
    params:
        store=LABEL_STORE,
        key=store_key("weak_labels"),
        files=lambda w, output: entry_files(output),
        precision=store_precision("weak_labels"),
    shell:
        "w2s store-fetch --store {params.store:q} --key {params.key} --manifest {input.manifest}"
        " --outputs {params.files} --precision {params.precision:q} > {log} 2>&1"


rule store_publish_weak_labels:
    input:
        manifest=DATA_MANIFEST,
        transfer=fill(WEAK_LABELS, split="transfer"),
        test=fill(WEAK_LABELS, split="test"),
    output:
        WEAK_STORE_ENTRY,
    log:
        LOG("store_publish_weak_labels", "{weak}"),
    wildcard_constraints:
        weak=TEACHERS,
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
    params:
        store=LABEL_STORE,
        key=store_key("weak_labels"),
        key_inputs=store_key_inputs("weak_labels"),
        files=lambda w, input: entry_files(input),
    shell:
        "w2s store-publish --store {params.store:q} --key {params.key}"
        " --key-inputs {params.key_inputs:q} --manifest {input.manifest}"
        " --files {params.files} --out {output} > {log} 2>&1"


if REASONING:

    localrules:
        store_publish_reasoning_samples,

    ruleorder: store_fetch_reasoning_samples > reasoning_sample_base

    use rule store_fetch_weak_labels as store_fetch_reasoning_samples with:
        input:
            unpack(store_fetch_inputs("reasoning_samples")),
        output:
            samples=R_SAMPLES,
        log:
            R_LOG("store_fetch", "{generator}"),
        wildcard_constraints:
            generator=name_pattern(R_BASE),
        resources:
            gpu=store_fetch_gpus("reasoning_samples"),
            mem_mb=2000,
            runtime=15,
        params:
            store=LABEL_STORE,
            key=store_key("reasoning_samples"),
            files=lambda w, output: entry_files(output),
            precision=store_precision("reasoning_samples"),

    use rule store_publish_weak_labels as store_publish_reasoning_samples with:
        input:
            manifest=R_PROBLEMS_MANIFEST,
            samples=R_SAMPLES,
        output:
            R_SAMPLES_STORE_ENTRY,
        log:
            R_LOG("store_publish", "{generator}"),
        wildcard_constraints:
            generator=name_pattern(R_BASE),
        params:
            store=LABEL_STORE,
            key=store_key("reasoning_samples"),
            key_inputs=store_key_inputs("reasoning_samples"),
            files=lambda w, input: entry_files(input),
