# Reasoning step 6: pass@k, majority@k and verifier selection@k of every generator on the test
# problems, the gap recovered, and the summary over tasks and seeds.


localrules:
    reasoning_evaluate,
    reasoning_summarize,


rule reasoning_evaluate:
    input:
        unpack(reasoning_generator_files),
        problems=rules.reasoning_problems.output.problems,
    output:
        metrics=R_METRICS,
        summary=R_SUMMARY,
        plot=report(
            R_PASS_AT_K,
            caption="../../report/pass_at_k.rst",
            category="Reasoning",
        ),
    log:
        R_LOG("evaluate"),
    conda:
        R_CONDA_ENV
    resources:
        mem_mb=2000,
    params:
        generators=reasoning_generator_specs,
        evaluation=as_json(R_EVALUATION),
        context=lambda w: as_json({"task": w.task, "seed": int(w.seed)}),
        code=code_hash("reasoning_evaluate"),
    shell:
        "w2s reasoning-evaluate --problems {input.problems} --generators {params.generators:q}"
        " --evaluation {params.evaluation:q} --context {params.context:q}"
        " --out-json {output.metrics} --out-csv {output.summary} --out-plot {output.plot} > {log} 2>&1"


rule reasoning_summarize:
    input:
        reasoning_metrics_files,
    output:
        runs=R_SUMMARY_RUNS,
        by_seed=R_SUMMARY_BY_SEED,
    log:
        RUN_LOG("reasoning/summarize"),
    conda:
        R_CONDA_ENV
    resources:
        mem_mb=2000,
    params:
        evaluation=as_json(R_EVALUATION),
        code=code_hash("reasoning_summarize"),
    shell:
        "w2s reasoning-summarize --metrics {input} --evaluation {params.evaluation:q}"
        " --out-runs {output.runs} --out-by-seed {output.by_seed} > {log} 2>&1"
