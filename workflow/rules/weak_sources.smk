# Weak-label sources besides single teachers: ensembles (weak.ensembles), aggregated weak
# verifiers (weak.aggregated) and labels degraded to a target accuracy (weak.degraded). They write the same files as label_weak, so students and
# evaluation use them like any teacher.


localrules:
    combine_weak_labels,
    degrade_weak_labels,
    aggregate_weak_labels,
    evaluate_verifiers,


rule combine_weak_labels:
    wildcard_constraints:
        weak=ENSEMBLES,
    input:
        ensemble_inputs,
    output:
        transfer="results/{task}/seed{seed}/weak/{weak}/labels/transfer.parquet",
        test="results/{task}/seed{seed}/weak/{weak}/labels/test.parquet",
    params:
        code=code_hash("combine_weak_labels"),
        members=ensemble_member_args,
        combine=lambda w: CFG["weak"]["ensembles"][w.weak]["combine"],
        out_dir=lambda w, output: os.path.dirname(output.test),
        provenance=lambda w: as_json(
            {"task": w.task, "seed": int(w.seed), "weak_model": w.weak}
        ),
    conda:
        CONDA_ENV
    log:
        "results/logs/{task}/seed{seed}/combine_weak_labels/{weak}.log",
    resources:
        mem_mb=2000,
    shell:
        "w2s combine-labels --members {params.members} --rule {params.combine}"
        " --out-dir {params.out_dir} --provenance {params.provenance:q} > {log} 2>&1"


rule degrade_weak_labels:
    wildcard_constraints:
        weak=DEGRADED,
    input:
        degraded_source_inputs,
        gold_transfer="results/{task}/seed{seed}/data/transfer.parquet",
        gold_test="results/{task}/seed{seed}/data/test.parquet",
    output:
        transfer="results/{task}/seed{seed}/weak/{weak}/labels/transfer.parquet",
        test="results/{task}/seed{seed}/weak/{weak}/labels/test.parquet",
    params:
        code=code_hash("degrade_weak_labels"),
        source_dir=lambda w, input: os.path.dirname(input[0]),
        gold_dir=lambda w, input: os.path.dirname(input.gold_test),
        target=lambda w: CFG["weak"]["degraded"][w.weak]["target_accuracy"],
        seed=lambda w: w.seed,
        out_dir=lambda w, output: os.path.dirname(output.test),
        provenance=lambda w: as_json(
            {"task": w.task, "seed": int(w.seed), "weak_model": w.weak}
        ),
    conda:
        CONDA_ENV
    log:
        "results/logs/{task}/seed{seed}/degrade_weak_labels/{weak}.log",
    resources:
        mem_mb=2000,
    shell:
        "w2s degrade-labels --source-dir {params.source_dir} --gold-dir {params.gold_dir}"
        " --target-accuracy {params.target} --seed {params.seed} --out-dir {params.out_dir}"
        " --provenance {params.provenance:q} > {log} 2>&1"


rule aggregate_weak_labels:
    wildcard_constraints:
        weak=AGGREGATED,
    input:
        aggregated_inputs,
    output:
        transfer="results/{task}/seed{seed}/weak/{weak}/labels/transfer.parquet",
        test="results/{task}/seed{seed}/weak/{weak}/labels/test.parquet",
        table="results/{task}/seed{seed}/weak/{weak}/verifiers.parquet",
        metadata="results/{task}/seed{seed}/weak/{weak}/aggregation.json",
    params:
        code=code_hash("aggregate_weak_labels"),
        teachers=aggregated_teacher_args,
        functions=lambda w: " ".join(CFG["weak"]["aggregated"][w.weak]["labeling_functions"]),
        settings=lambda w: as_json(CFG["weak"]["aggregated"][w.weak]["settings"]),
        out_dir=lambda w, output: os.path.dirname(output.test),
        provenance=lambda w: as_json(
            {"task": w.task, "seed": int(w.seed), "weak_model": w.weak}
        ),
    conda:
        CONDA_ENV
    log:
        "results/logs/{task}/seed{seed}/aggregate_weak_labels/{weak}.log",
    resources:
        mem_mb=2000,
    shell:
        "w2s aggregate-labels --teachers {params.teachers}"
        " --labeling-functions {params.functions} --settings {params.settings:q}"
        " --out-dir {params.out_dir} --table-out {output.table} --metadata-out {output.metadata}"
        " --provenance {params.provenance:q} > {log} 2>&1"


rule evaluate_verifiers:
    wildcard_constraints:
        weak=AGGREGATED,
    input:
        aggregated_inputs,
        gold_transfer="results/{task}/seed{seed}/data/transfer.parquet",
        gold_test="results/{task}/seed{seed}/data/test.parquet",
    output:
        json="results/{task}/seed{seed}/weak/{weak}/verifier_evaluation.json",
        table="results/{task}/seed{seed}/weak/{weak}/verifier_evaluation.parquet",
    params:
        code=code_hash("evaluate_verifiers"),
        teachers=aggregated_teacher_args,
        functions=lambda w: " ".join(CFG["weak"]["aggregated"][w.weak]["labeling_functions"]),
        settings=lambda w: as_json(CFG["weak"]["aggregated"][w.weak]["settings"]),
    conda:
        CONDA_ENV
    log:
        "results/logs/{task}/seed{seed}/evaluate_verifiers/{weak}.log",
    resources:
        mem_mb=2000,
    shell:
        "w2s evaluate-verifiers --teachers {params.teachers}"
        " --labeling-functions {params.functions} --settings {params.settings:q}"
        " --gold-transfer {input.gold_transfer} --gold-test {input.gold_test}"
        " --out-json {output.json} --out-table {output.table} > {log} 2>&1"
