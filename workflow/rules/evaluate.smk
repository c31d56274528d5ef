# Stage 5: weak / student / ceiling accuracy on test gold, PGR, agreement; one summary table.


rule evaluate:
    input:
        test="results/{task}/seed{seed}/data/test.parquet",
        transfer="results/{task}/seed{seed}/data/transfer.parquet",
        weak_test="results/{task}/seed{seed}/weak/{weak}/labels/test.parquet",
        weak_transfer="results/{task}/seed{seed}/weak/{weak}/labels/transfer.parquet",
        student="results/{task}/seed{seed}/strong/{strong}/students/{weak}/{loss}/predictions.parquet",
        ceiling="results/{task}/seed{seed}/strong/{strong}/ceiling/predictions.parquet",
    output:
        "results/{task}/seed{seed}/metrics/{weak}/{strong}/{loss}.json",
    params:
        min_gap=CFG["evaluation"]["min_pgr_gap"],
        experiment=lambda w: as_json(
            {
                "task": w.task,
                "seed": int(w.seed),
                "weak_model": w.weak,
                "strong_model": w.strong,
                "loss": w.loss,
                "mode": CFG["strong"]["mode"],
            }
        ),
    conda:
        CONDA_ENV
    log:
        "results/logs/{task}/seed{seed}/evaluate/{weak}/{strong}/{loss}.log",
    resources:
        mem_mb=2000,
    shell:
        "python -m w2s evaluate --test {input.test} --transfer {input.transfer}"
        " --weak-test {input.weak_test} --weak-transfer {input.weak_transfer}"
        " --student {input.student} --ceiling {input.ceiling} --min-pgr-gap {params.min_gap}"
        " --experiment {params.experiment:q} --out {output} > {log} 2>&1"


rule summarize:
    input:
        metrics_files,
    output:
        parquet="results/summary.parquet",
        csv="results/summary.csv",
    conda:
        CONDA_ENV
    log:
        "results/logs/summarize.log",
    resources:
        mem_mb=2000,
    shell:
        "python -m w2s summarize --metrics {input} --out-parquet {output.parquet}"
        " --out-csv {output.csv} > {log} 2>&1"
