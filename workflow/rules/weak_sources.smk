# Weak-label sources besides single teachers: ensembles (weak.ensembles), aggregated weak
# verifiers (weak.aggregated) and labels degraded to a target accuracy (weak.degraded). They write
# the same files as label_weak, so students and evaluation use them like any teacher.


localrules:
    combine_weak_labels,
    degrade_weak_labels,
    aggregate_weak_labels,
    evaluate_verifiers,


rule combine_weak_labels:
    input:
        source_files(ensemble_members),
    output:
        transfer=fill(WEAK_LABELS, split="transfer"),
        test=fill(WEAK_LABELS, split="test"),
    log:
        LOG("combine_weak_labels", "{weak}"),
    wildcard_constraints:
        weak=ENSEMBLES,
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
    params:
        code=code_hash("combine_weak_labels"),
        members=source_file_args(ensemble_members),
        combine=lambda w: CFG["weak"]["ensembles"][w.weak]["combine"],
        outputs=lambda w, output: split_args(output),
        provenance=source_provenance,
    shell:
        "w2s combine-weak-labels --members {params.members} --rule {params.combine}"
        " --outputs {params.outputs} --provenance {params.provenance:q} > {log} 2>&1"


rule degrade_weak_labels:
    input:
        source=source_files(degraded_source),
        gold_transfer=fill(DATA_SPLIT, split="transfer"),
        gold_test=fill(DATA_SPLIT, split="test"),
    output:
        transfer=fill(WEAK_LABELS, split="transfer"),
        test=fill(WEAK_LABELS, split="test"),
    log:
        LOG("degrade_weak_labels", "{weak}"),
    wildcard_constraints:
        weak=DEGRADED,
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
    params:
        code=code_hash("degrade_weak_labels"),
        source=lambda w, input: split_args(dict(zip(LABELED_SPLITS, input.source))),
        target=lambda w: CFG["weak"]["degraded"][w.weak]["target_accuracy"],
        seed=lambda w: w.seed,
        outputs=lambda w, output: split_args(output),
        provenance=source_provenance,
    shell:
        "w2s degrade-weak-labels --source {params.source} --gold transfer={input.gold_transfer}"
        " test={input.gold_test} --target-accuracy {params.target} --seed {params.seed}"
        " --outputs {params.outputs} --provenance {params.provenance:q} > {log} 2>&1"


rule aggregate_weak_labels:
    input:
        source_files(aggregated_teachers),
    output:
        transfer=fill(WEAK_LABELS, split="transfer"),
        test=fill(WEAK_LABELS, split="test"),
        table=VERIFIER_TABLE,
        metadata=AGGREGATION,
    log:
        LOG("aggregate_weak_labels", "{weak}"),
    wildcard_constraints:
        weak=AGGREGATED,
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
    params:
        code=code_hash("aggregate_weak_labels"),
        teachers=source_file_args(aggregated_teachers),
        functions=lambda w: " ".join(CFG["weak"]["aggregated"][w.weak]["labeling_functions"]),
        settings=lambda w: as_json(CFG["weak"]["aggregated"][w.weak]["settings"]),
        outputs=lambda w, output: split_args(output),
        # the aggregator and labeling functions: names and plugin files' hashes (code and provenance)
        provenance=lambda w: as_json(
            {**json.loads(source_provenance(w)), "extensions": code_identity(aggregation_extensions(CFG, w.weak))}
        ),
        plugins=lambda w: plugin_args(aggregation_extensions(CFG, w.weak)),
    shell:
        "w2s {params.plugins} aggregate-weak-labels --teachers {params.teachers}"
        " --labeling-functions {params.functions} --settings {params.settings:q}"
        " --outputs {params.outputs} --table-out {output.table} --metadata-out {output.metadata}"
        " --provenance {params.provenance:q} > {log} 2>&1"


rule evaluate_verifiers:
    input:
        source_files(aggregated_teachers),
        gold_transfer=fill(DATA_SPLIT, split="transfer"),
        gold_test=fill(DATA_SPLIT, split="test"),
    output:
        json=VERIFIER_REPORT,
        table=VERIFIER_REPORT_TABLE,
    log:
        LOG("evaluate_verifiers", "{weak}"),
    wildcard_constraints:
        weak=AGGREGATED,
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
    params:
        code=code_hash("evaluate_verifiers"),
        teachers=source_file_args(aggregated_teachers),
        functions=lambda w: " ".join(CFG["weak"]["aggregated"][w.weak]["labeling_functions"]),
        settings=lambda w: as_json(CFG["weak"]["aggregated"][w.weak]["settings"]),
        extensions=lambda w: as_json(code_identity(aggregation_extensions(CFG, w.weak))),
        plugins=lambda w: plugin_args(aggregation_extensions(CFG, w.weak)),
    shell:
        "w2s {params.plugins} evaluate-verifiers --teachers {params.teachers}"
        " --labeling-functions {params.functions} --settings {params.settings:q}"
        " --gold-transfer {input.gold_transfer} --gold-test {input.gold_test}"
        " --out-json {output.json} --out-table {output.table} > {log} 2>&1"
