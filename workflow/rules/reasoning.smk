# The generative track (config `reasoning`): problems -> samples (vLLM) -> verifier scores ->
# student train sets -> SFT/DPO students and ceiling -> their test samples -> metrics.
# Logic lives in w2s.reasoning; outputs go under results/reasoning/{task}/seed{seed}/.

# Scoring, train-set selection and evaluation are light: they run on the submitting machine.
localrules:
    reasoning_problems,
    reasoning_score,
    reasoning_train_set,
    reasoning_evaluate,
    reasoning_summarize,
    fetch_reasoning_samples,
    publish_reasoning_samples,


ruleorder: fetch_reasoning_samples > reasoning_sample_base


rule reasoning_problems:
    output:
        problems=f"{R_ROOT}/problems/problems.parquet",
        manifest=f"{R_ROOT}/problems/manifest.json",
    params:
        task=lambda w: w.task,
        seed=lambda w: w.seed,
        spec=lambda w: as_json(REASONING["tasks"][w.task]),
        code=code_hash("reasoning_problems"),
        out_dir=lambda w, output: os.path.dirname(output.manifest),
    conda:
        CONDA_ENV
    log:
        "results/logs/reasoning/{task}/seed{seed}/problems.log",
    resources:
        mem_mb=2000,
    shell:
        "w2s reasoning-problems --task {params.task} --seed {params.seed}"
        " --spec {params.spec:q} --out-dir {params.out_dir} > {log} 2>&1"


rule reasoning_sample_base:
    wildcard_constraints:
        generator=name_pattern(R_BASE),
    input:
        problems=rules.reasoning_problems.output.problems,
    output:
        f"{R_ROOT}/samples/{{generator}}.parquet",
    params:
        checkpoint=lambda w: model_reference(
            CFG, reasoning_plan.model_name(CFG, w.generator)
        ),
        n=reasoning_n_arg,
        sampling=reasoning_sampling_arg,
        engine=reasoning_engine("reasoning_sample_base"),
        seed=lambda w: w.seed,
        code=code_hash("reasoning_sample_base"),
        provenance=reasoning_sample_provenance,
    conda:
        CONDA_ENV
    log:
        "results/logs/reasoning/{task}/seed{seed}/sample/{generator}.log",
    benchmark:
        "results/benchmarks/reasoning/{task}/seed{seed}/sample/{generator}.tsv"
    threads: stage_threads(CFG, "reasoning_sample_base")
    resources:
        **rule_resources(CFG, "reasoning_sample_base"),
    shell:
        "w2s --threads {threads} reasoning-sample --checkpoint {params.checkpoint:q}"
        " --problems {input.problems} --n {params.n} --sampling {params.sampling:q}"
        " --engine {params.engine:q} --seed {params.seed} --generator {wildcards.generator}"
        " --provenance {params.provenance:q} --out {output} > {log} 2>&1"


use rule reasoning_sample_base as reasoning_sample_trained with:
    wildcard_constraints:
        generator=name_pattern(R_TRAINED),
    input:
        problems=rules.reasoning_problems.output.problems,
        model=f"{R_ROOT}/models/{{generator}}",
    params:
        checkpoint=lambda w, input: input.model,
        n=reasoning_n_arg,
        sampling=reasoning_sampling_arg,
        engine=reasoning_engine("reasoning_sample_trained"),
        seed=lambda w: w.seed,
        code=code_hash("reasoning_sample_trained"),
        provenance=reasoning_sample_provenance,
    threads: stage_threads(CFG, "reasoning_sample_trained")
    resources:
        **rule_resources(CFG, "reasoning_sample_trained"),


rule fetch_reasoning_samples:
    wildcard_constraints:
        generator=name_pattern(R_BASE),
    input:
        unpack(reasoning_fetch_inputs),
    output:
        f"{R_ROOT}/samples/{{generator}}.parquet",
    params:
        store=LABEL_STORE,
        key=reasoning_sample_key,
    conda:
        CONDA_ENV
    log:
        "results/logs/reasoning/{task}/seed{seed}/fetch_samples/{generator}.log",
    resources:
        mem_mb=1000,
    shell:
        "w2s store-fetch --store {params.store:q} --key {params.key} --manifest {input.manifest}"
        " --outputs samples.parquet={output} > {log} 2>&1"


rule publish_reasoning_samples:
    wildcard_constraints:
        generator=name_pattern(R_BASE),
    input:
        manifest=rules.reasoning_problems.output.manifest,
        samples=f"{R_ROOT}/samples/{{generator}}.parquet",
    output:
        f"{R_ROOT}/samples/{{generator}}.store_entry.json",
    params:
        store=LABEL_STORE,
        key=reasoning_sample_key,
        key_inputs=lambda w: as_json(
            reasoning_plan.sample_key_inputs(CFG, w.task, w.seed, w.generator)
        ),
    conda:
        CONDA_ENV
    log:
        "results/logs/reasoning/{task}/seed{seed}/publish_samples/{generator}.log",
    resources:
        mem_mb=1000,
    shell:
        "w2s store-publish --store {params.store:q} --key {params.key}"
        " --key-inputs {params.key_inputs:q} --manifest {input.manifest}"
        " --files samples.parquet={input.samples} --out {output} > {log} 2>&1"


rule reasoning_score:
    input:
        f"{R_ROOT}/samples/{{generator}}.parquet",
    output:
        f"{R_ROOT}/scores/{{generator}}.parquet",
    params:
        checks=" ".join(REASONING.get("verifiers", {}).get("checks", [])),
        aggregation=as_json(REASONING.get("verifiers", {}).get("aggregation", {})),
        code=code_hash("reasoning_score"),
    conda:
        CONDA_ENV
    log:
        "results/logs/reasoning/{task}/seed{seed}/score/{generator}.log",
    resources:
        mem_mb=2000,
    shell:
        "w2s reasoning-score --samples {input} --checks {params.checks}"
        " --aggregation {params.aggregation:q} --out {output} > {log} 2>&1"


rule reasoning_train_set:
    wildcard_constraints:
        generator=name_pattern(R_TRAINED),
    input:
        unpack(reasoning_train_set_inputs),
        problems=rules.reasoning_problems.output.problems,
    output:
        f"{R_ROOT}/train_sets/{{generator}}.parquet",
    params:
        method=lambda w: as_json(reasoning_plan.trained_models(CFG)[w.generator]),
        samples=reasoning_sample_args,
        weak_scores=lambda w, input: (
            f"--weak-scores {input.weak_scores}" if "weak_scores" in input.keys() else ""
        ),
        threshold=REASONING.get("verifiers", {}).get("threshold"),
        pairs=REASONING.get("pairs_per_problem"),
        code=code_hash("reasoning_train_set"),
    conda:
        CONDA_ENV
    log:
        "results/logs/reasoning/{task}/seed{seed}/train_set/{generator}.log",
    resources:
        mem_mb=2000,
    shell:
        "w2s reasoning-train-set --method {params.method:q} --problems {input.problems}"
        " --samples {params.samples} {params.weak_scores} --threshold {params.threshold}"
        " --pairs-per-problem {params.pairs} --out {output} > {log} 2>&1"


rule reasoning_train:
    wildcard_constraints:
        generator=name_pattern(R_TRAINED),
    input:
        f"{R_ROOT}/train_sets/{{generator}}.parquet",
    output:
        directory(f"{R_ROOT}/models/{{generator}}"),
    params:
        checkpoint=lambda w: model_reference(CFG, REASONING["strong"]["model"]),
        settings=as_json(REASONING.get("train", {})),
        prompt=lambda w: as_json(reasoning_plan.sampling(CFG, w.generator)["prompt"]),
        seed=lambda w: w.seed,
        device=CFG["device"],
        code=code_hash("reasoning_train"),
    conda:
        CONDA_ENV
    log:
        "results/logs/reasoning/{task}/seed{seed}/train/{generator}.log",
    benchmark:
        "results/benchmarks/reasoning/{task}/seed{seed}/train/{generator}.tsv"
    threads: stage_threads(CFG, "reasoning_train")
    resources:
        **rule_resources(CFG, "reasoning_train"),
    shell:
        "w2s --threads {threads} reasoning-train --checkpoint {params.checkpoint:q}"
        " --train-set {input} --settings {params.settings:q} --prompt {params.prompt:q}"
        " --seed {params.seed} --device {params.device} --out-dir {output} > {log} 2>&1"


rule reasoning_evaluate:
    input:
        unpack(reasoning_generator_files),
        problems=rules.reasoning_problems.output.problems,
    output:
        metrics=f"{R_ROOT}/metrics.json",
        summary=f"{R_ROOT}/summary.csv",
        plot=report(
            f"{R_ROOT}/pass_at_k.png",
            caption="../report/pass_at_k.rst",
            category="Reasoning",
        ),
    params:
        generators=reasoning_generator_specs,
        k=" ".join(str(k) for k in REASONING.get("evaluation", {}).get("k", [])),
        evaluation=as_json(REASONING.get("evaluation", {})),
        context=lambda w: as_json({"task": w.task, "seed": int(w.seed)}),
        code=code_hash("reasoning_evaluate"),
    conda:
        CONDA_ENV
    log:
        "results/logs/reasoning/{task}/seed{seed}/evaluate.log",
    resources:
        mem_mb=2000,
    shell:
        "w2s reasoning-evaluate --problems {input.problems} --generators {params.generators:q}"
        " --k {params.k} --evaluation {params.evaluation:q} --context {params.context:q}"
        " --out-json {output.metrics} --out-csv {output.summary} --out-plot {output.plot} > {log} 2>&1"


rule reasoning_summarize:
    input:
        reasoning_metrics_files,
    output:
        runs="results/reasoning/summary.csv",
        by_seed="results/reasoning/summary_by_seed.csv",
    params:
        confidence=REASONING.get("evaluation", {}).get("confidence_level"),
        code=code_hash("reasoning_summarize"),
    conda:
        CONDA_ENV
    log:
        "results/logs/reasoning/summarize.log",
    resources:
        mem_mb=2000,
    shell:
        "w2s reasoning-summarize --metrics {input} --confidence-level {params.confidence}"
        " --out-runs {output.runs} --out-by-seed {output.by_seed} > {log} 2>&1"
