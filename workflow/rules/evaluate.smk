# Stage 5: score weak / student / ceiling on test gold (accuracy, AUROC, ECE, Brier), PGR with a
# bootstrap interval, diagnostics; the summary tables over the grid and over seeds; the plots.
# Outputs wrapped in report() make up `snakemake --report report.html`.


# Plotting is light: run it beside evaluate and summarize on the submitting machine.
localrules:
    plots,


# One job per (task, seed, weak, strong) pair scores every method's student: the pair's gold, weak
# labels and ceiling are shared, and a grid of 1,000 experiments schedules 100 jobs instead of 1,000.
rule evaluate:
    input:
        test=fill(DATA_SPLIT, split="test"),
        transfer=fill(DATA_SPLIT, split="transfer"),
        weak_test=fill(WEAK_LABELS, split="test"),
        weak_transfer=fill(WEAK_LABELS, split="transfer"),
        students=per_method(rules.train_student.output.predictions),
        ceiling=rules.train_ceiling.output.predictions,
    output:
        per_method(METRICS),
    log:
        LOG("evaluate", "{weak}/{strong}"),
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
    params:
        code=code_hash("evaluate"),
        settings=as_json(CFG["evaluation"]),
        methods=METHODS,
        bands=as_json(confidence_bands(CFG["strong"]["methods"])),
        experiment=lambda w: as_json(
            {
                "task": w.task,
                "seed": int(w.seed),
                "weak_model": w.weak,
                "strong_model": w.strong,
                "mode": strong_spec(CFG, w.strong)["mode"],
            }
        ),
    shell:
        "w2s evaluate --test {input.test} --transfer {input.transfer}"
        " --weak-test {input.weak_test} --weak-transfer {input.weak_transfer}"
        " --methods {params.methods} --students {input.students} --ceiling {input.ceiling}"
        " --settings {params.settings:q} --experiment {params.experiment:q} --bands {params.bands:q}"
        " --outputs {output} > {log} 2>&1"


rule summarize:
    input:
        metrics_files,
    output:
        parquet=f"{SUMMARY}.parquet",
        csv=report(
            f"{SUMMARY}.csv",
            caption="../report/summary.rst",
            category="Tables",
            labels={"table": "per experiment (CSV)"},
        ),
        by_seed_parquet=f"{SUMMARY_BY_SEED}.parquet",
        by_seed_csv=report(
            f"{SUMMARY_BY_SEED}.csv",
            caption="../report/summary_by_seed.rst",
            category="Tables",
            labels={"table": "over seeds (CSV)"},
        ),
        html=report(
            f"{SUMMARY}.html",
            caption="../report/summary_html.rst",
            category="Tables",
            labels={"table": "headline numbers"},
        ),
        config=report(
            RESOLVED_CONFIG,
            caption="../report/config.rst",
            category="Configuration",
        ),
    log:
        RUN_LOG("summarize"),
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
    params:
        code=code_hash("summarize"),
        settings=as_json(CFG["evaluation"]),
        # A function: the config's text (a reasoning prompt's "{question}") is not a wildcard pattern.
        config=lambda w: as_json(CFG),
    shell:
        "w2s summarize --metrics {input} --out-parquet {output.parquet}"
        " --out-csv {output.csv} --out-by-seed-parquet {output.by_seed_parquet}"
        " --out-by-seed-csv {output.by_seed_csv} --out-html {output.html}"
        " --settings {params.settings:q}"
        " --config {params.config:q} --out-config {output.config} > {log} 2>&1"


rule plots:
    input:
        summary=rules.summarize.output.parquet,
        by_seed=rules.summarize.output.by_seed_parquet,
        metrics=metrics_files,
    output:
        accuracy=report(
            f"{PLOTS}/accuracy.png",
            caption="../report/accuracy.rst",
            category="Plots",
            labels={"plot": "accuracy"},
        ),
        pgr=report(
            f"{PLOTS}/pgr.png",
            caption="../report/pgr.rst",
            category="Plots",
            labels={"plot": "PGR"},
        ),
        student_vs_ceiling=report(
            f"{PLOTS}/student_vs_ceiling.png",
            caption="../report/student_vs_ceiling.rst",
            category="Plots",
            labels={"plot": "student vs ceiling"},
        ),
        calibration=report(
            f"{PLOTS}/calibration.png",
            caption="../report/calibration.rst",
            category="Plots",
            labels={"plot": "calibration"},
        ),
        gain_vs_misfit=report(
            f"{PLOTS}/gain_vs_misfit.png",
            caption="../report/gain_vs_misfit.rst",
            category="Plots",
            labels={"plot": "gain vs misfit"},
        ),
        accuracy_vs_strong_size=report(
            f"{PLOTS}/accuracy_vs_strong_size.png",
            caption="../report/accuracy_vs_strong_size.rst",
            category="Plots",
            labels={"plot": "accuracy vs strong size"},
        ),
        pgr_heatmap=report(
            f"{PLOTS}/pgr_heatmap.png",
            caption="../report/pgr_heatmap.rst",
            category="Plots",
            labels={"plot": "PGR heatmap"},
        ),
        pgr_table_csv=f"{PLOTS}/pgr_table.csv",
        pgr_table_md=f"{PLOTS}/pgr_table.md",
    log:
        RUN_LOG("plots"),
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
    params:
        code=code_hash("plots"),
        # The model-family plots show one method: the config's first.
        method=lambda w: next(iter(CFG["strong"]["methods"])),
        weak_order=lambda w: " ".join(shlex.quote(name) for name in weak_sources(CFG)),
        strong_order=lambda w: " ".join(shlex.quote(name) for name in CFG["strong"]["models"]),
    shell:
        "w2s plots --summary {input.summary} --by-seed {input.by_seed}"
        " --metrics {input.metrics} --outputs accuracy={output.accuracy} pgr={output.pgr}"
        " student_vs_ceiling={output.student_vs_ceiling} calibration={output.calibration}"
        " gain_vs_misfit={output.gain_vs_misfit}"
        " accuracy_vs_strong_size={output.accuracy_vs_strong_size} pgr_heatmap={output.pgr_heatmap}"
        " pgr_table_csv={output.pgr_table_csv} pgr_table_md={output.pgr_table_md}"
        " --method {params.method} --weak-order {params.weak_order} --strong-order {params.strong_order}"
        " > {log} 2>&1"
