# The shared results store (config `results_store`, w2s/results_store.py): after evaluate, one job per
# (task, seed, weak, strong) pair publishes one immutable JSON record per method, named by its content,
# so many teams can publish into one store at once and a rerun with the same inputs adds nothing.
# `snakemake leaderboard` reads every record of the store (other teams' too) and pools only those with
# the same comparability key. The store changes outside this workflow: `--forcerun leaderboard` redraws it.


localrules:
    publish_results,
    leaderboard,


rule publish_results:
    input:
        metrics=per_method(METRICS),
        students=per_method(rules.train_student.output.predictions),
        ceiling=rules.train_ceiling.output.predictions,
        manifest=DATA_MANIFEST,
        weak_labels=fill(WEAK_LABELS, split="test"),
    output:
        RESULTS_RECEIPT,
    log:
        LOG("publish_results", "{weak}/{strong}"),
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
    params:
        code=code_hash("publish_results"),
        store=RESULTS_STORE,
        team=team_name(CFG["team"]),
        methods=METHODS,
        options=as_json({method: resolved_method(method_spec(CFG, method)) for method in METHODS}),
        comparability=lambda w: as_json(comparability_inputs(CFG, w.task, w.weak, w.strong)),
        # Present when this run trained the teacher (not for labels fetched from the label store).
        teacher_info=lambda w: f"{TEACHER_MODEL.format(**w)}/train_info.json",
    shell:
        "w2s publish-results --store {params.store:q} --team {params.team:q}"
        " --comparability {params.comparability:q} --method-options {params.options:q}"
        " --methods {params.methods} --metrics {input.metrics} --students {input.students}"
        " --manifest {input.manifest} --weak-labels {input.weak_labels} --ceiling {input.ceiling}"
        " --teacher-info {params.teacher_info:q} --out {output} > {log} 2>&1"


rule leaderboard:
    input:
        results_receipts,
    output:
        html=report(
            f"{LEADERBOARD}/leaderboard.html",
            caption="../report/leaderboard.rst",
            category="Leaderboard",
            labels={"view": "table"},
        ),
        csv=f"{LEADERBOARD}/leaderboard.csv",
        png=report(
            f"{LEADERBOARD}/leaderboard.png",
            caption="../report/leaderboard.rst",
            category="Leaderboard",
            labels={"view": "PGR heatmap"},
        ),
    log:
        RUN_LOG("leaderboard"),
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
    params:
        code=code_hash("leaderboard"),
        store=RESULTS_STORE,
        out_dir=lambda w, output: os.path.dirname(output.csv),
    shell:
        "w2s leaderboard --store {params.store:q} --out-dir {params.out_dir} > {log} 2>&1"
