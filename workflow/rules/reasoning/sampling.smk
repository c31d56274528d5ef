# Reasoning step 2: samples with vLLM (GPU jobs). Base generators (weak, weaker, strong) sample the
# train and test problems, and share their samples through the label store (store.smk:
# store_fetch_reasoning_samples runs instead when the store has them); trained generators (ceiling,
# students) sample the test problems.


rule reasoning_sample_base:
    input:
        problems=rules.reasoning_problems.output.problems,
    output:
        R_SAMPLES,
    log:
        R_LOG("sample", "{generator}"),
    benchmark:
        R_BENCHMARK("sample", "{generator}")
    wildcard_constraints:
        generator=name_pattern(R_BASE),
    conda:
        R_CONDA_ENV
    threads: stage_threads(CFG, "reasoning_sample_base")
    resources:
        **rule_resources(CFG, "reasoning_sample_base"),
    params:
        checkpoint=lambda w: model_reference(CFG, reasoning_plan.model_name(CFG, w.generator)),
        n=reasoning_n_arg,
        sampling=reasoning_sampling_arg,
        engine=reasoning_engine("reasoning_sample_base"),
        seed=lambda w: w.seed,
        code=code_hash("reasoning_sample_base"),
        provenance=reasoning_sample_provenance,
    shell:
        "w2s --threads {threads} reasoning-sample --checkpoint {params.checkpoint:q}"
        " --problems {input.problems} --n {params.n} --sampling {params.sampling:q}"
        " --engine {params.engine:q} --seed {params.seed} --generator {wildcards.generator}"
        " --provenance {params.provenance:q} --out {output} > {log} 2>&1"


use rule reasoning_sample_base as reasoning_sample_trained with:
    input:
        problems=rules.reasoning_problems.output.problems,
        model=R_MODEL,
    wildcard_constraints:
        generator=name_pattern(R_TRAINED),
    threads: stage_threads(CFG, "reasoning_sample_trained")
    resources:
        **rule_resources(CFG, "reasoning_sample_trained"),
    params:
        checkpoint=lambda w, input: input.model,
        n=reasoning_n_arg,
        sampling=reasoning_sampling_arg,
        engine=reasoning_engine("reasoning_sample_trained"),
        seed=lambda w: w.seed,
        code=code_hash("reasoning_sample_trained"),
        provenance=reasoning_sample_provenance,
