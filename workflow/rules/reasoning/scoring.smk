# Reasoning step 3: every generator's samples scored by the weak verifiers (no gold).


localrules:
    reasoning_score,


rule reasoning_score:
    input:
        R_SAMPLES,
    output:
        R_SCORES,
    log:
        R_LOG("score", "{generator}"),
    conda:
        R_CONDA_ENV
    resources:
        mem_mb=2000,
    params:
        checks=" ".join(R_VERIFIERS["checks"]),
        aggregation=as_json(R_VERIFIERS["aggregation"]),
        code=code_hash("reasoning_score"),
    shell:
        "w2s reasoning-score --samples {input} --checks {params.checks}"
        " --aggregation {params.aggregation:q} --out {output} > {log} 2>&1"
