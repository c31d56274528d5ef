# Weak-to-strong generalization experiments: config.yaml -> results/summary.{parquet,csv} (classification)
# and results/reasoning/<task>/seed<seed>/metrics.json (the generative reasoning track).
# Each stage lives in workflow/rules/<stage>.smk (the reasoning track's in workflow/rules/reasoning/)
# and calls the `w2s` package (workflow/w2s); docs/architecture.md is the map.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


# The config is validated once, against workflow/schemas/config.schema.yaml, by w2s.config.resolve_config
# (in common.smk), which also fills the schema's defaults and checks cross-references.


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/teacher.smk"
include: "workflow/rules/labels.smk"
include: "workflow/rules/store.smk"
include: "workflow/rules/weak_sources.smk"
include: "workflow/rules/strong.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/results.smk"


# The generative reasoning track, one file per step, only when the config has a `reasoning` section.
if REASONING:

    include: "workflow/rules/reasoning/common.smk"
    include: "workflow/rules/reasoning/problems.smk"
    include: "workflow/rules/reasoning/sampling.smk"
    include: "workflow/rules/reasoning/scoring.smk"
    include: "workflow/rules/reasoning/train_set.smk"
    include: "workflow/rules/reasoning/training.smk"
    include: "workflow/rules/reasoning/evaluation.smk"


rule all:
    default_target: True
    input:
        classification_targets,
        store_publish_targets,
        results_receipts,
        verifier_reports,
        reasoning_targets,
