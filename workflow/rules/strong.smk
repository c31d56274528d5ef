# Stage 4: strong ceiling (transfer gold) and strong students (weak labels), same hyperparameters.
# In linear_probe mode, frozen features are extracted once per strong model and shared by all roles.


rule extract_features:
    input:
        transfer=fill(DATA_SPLIT, split="transfer"),
        test=fill(DATA_SPLIT, split="test"),
    output:
        transfer=fill(FEATURES, split="transfer"),
        test=fill(FEATURES, split="test"),
    log:
        LOG("extract_features", "{strong}"),
    benchmark:
        BENCHMARK("extract_features", "{strong}")
    conda:
        CONDA_ENV
    threads: stage_threads(CFG, "extract_features")
    resources:
        **rule_resources(CFG, "extract_features"),
    params:
        model_ref=lambda w: model_reference(CFG, w.strong),
        settings=lambda w: as_json(feature_settings(CFG, w.strong)),
        code=code_hash("extract_features"),
        device=CFG["device"],
    shell:
        "w2s --threads {threads} extract-features --checkpoint {params.model_ref:q}"
        " --inputs transfer={input.transfer} test={input.test}"
        " --outputs transfer={output.transfer} test={output.test}"
        " --settings {params.settings:q} --device {params.device} > {log} 2>&1"


rule train_ceiling:
    input:
        unpack(feature_inputs),
        targets=fill(DATA_SPLIT, split="transfer"),
        test=fill(DATA_SPLIT, split="test"),
        manifest=DATA_MANIFEST,
    output:
        model=directory(f"{CEILING}/model"),
        predictions=f"{CEILING}/predictions.parquet",
    log:
        LOG("train_ceiling", "{strong}"),
    benchmark:
        BENCHMARK("train_ceiling", "{strong}")
    conda:
        CONDA_ENV
    threads: stage_threads(CFG, "train_ceiling")
    resources:
        **rule_resources(CFG, "train_ceiling"),
    params:
        **STRONG_PARAMS,
        role="ceiling",
        method=as_json({}),
        code=code_hash("train_ceiling"),
        plugins="",  # the ceiling trains with the built-in xent: no plugin to import
    shell:
        "w2s --threads {threads} {params.plugins} train-strong --role {params.role}"
        " --spec {params.spec:q} --method {params.method:q}"
        " --targets {input.targets} --manifest {input.manifest} --test {input.test}"
        " --features {params.features} --checkpoint {params.model_ref:q}"
        " --seed {params.seed} --device {params.device}"
        " --out-model {output.model} --out-predictions {output.predictions} > {log} 2>&1"


use rule train_ceiling as train_student with:
    input:
        unpack(feature_inputs),
        targets=fill(WEAK_LABELS, split="transfer"),
        test=fill(DATA_SPLIT, split="test"),
        manifest=DATA_MANIFEST,
    output:
        model=directory(f"{STUDENT}/model"),
        predictions=f"{STUDENT}/predictions.parquet",
    log:
        LOG("train_student", "{strong}/{weak}/{method}"),
    benchmark:
        BENCHMARK("train_student", "{strong}/{weak}/{method}")
    conda:
        CONDA_ENV
    threads: stage_threads(CFG, "train_student")
    resources:
        **rule_resources(CFG, "train_student"),
    params:
        **STRONG_PARAMS,
        role="student",
        method=lambda w: as_json(method_spec(CFG, w.method)),
        code=code_hash("train_student"),
        # the method's loss and selection rule: names and, for a plugin, its file's hash or package version
        extensions=lambda w: as_json(code_identity(method_extensions(method_spec(CFG, w.method)))),
        plugins=lambda w: plugin_args(method_extensions(method_spec(CFG, w.method))),
