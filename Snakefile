# Small multilingual LMs end to end: parquet shards -> datatrove -> pretraining -> HF
# checkpoints -> TRL post-training (SFT, DPO) -> lm-eval JSON -> tables and figures.
# Config: config/config.yaml (embedded default), validated by config/schemas/; resolved by
# the plan (workflow/scripts/zflow/plan.py). docs/architecture.md: where each concept lives.


include: "rules/common.smk"


report: "workflow/report/workflow.rst"


rule all:
    default_target: True
    input:
        [PLAN.lang_files(lang) for lang in LANGS],
        P.REPORT_MD,
        PLAN.qualitative_files(),
        PLAN.release_files(),


for _lang in LANGS:

    rule:
        name:
            f"all_{_lang}"
        input:
            PLAN.lang_files(_lang),

    # Evaluate while training: every complete checkpoint on disk, without waiting for (or
    # re-running) the pretraining job; run it again later for the new checkpoints.
    rule:
        name:
            f"evals_{_lang}"
        input:
            lambda w, lang=_lang: PLAN.evals_on_disk(lang),


# The qualitative benchmark alone: its answers, scores and report (the config's `qualitative`).
if PLAN.qualitative_files():

    rule qualitative:
        input:
            PLAN.qualitative_files(),


# `release_<model>` / `upload_<model>` for each model of the config's `release` section
for _model in PLAN.release_models():

    rule:
        name:
            f"release_{_model}"
        input:
            P.RELEASE.format(model=_model),

    rule:
        name:
            f"upload_{_model}"
        input:
            P.RELEASE_UPLOAD.format(model=_model),


# `all_<lang>` for a language the config does not define: one clear error, not "no rule".
rule unknown_language:
    input:
        unknown_language,
    output:
        "all_{name}",
    log:
        "results/logs/unknown_language/{name}.log",
    wildcard_constraints:
        name=r"[a-z]{2,3}",
    localrule: True
    conda:
        "envs/workflow.yaml"
    shell:
        "false"


include: "rules/download.smk"
include: "rules/tokenizer.smk"
include: "rules/tokenize.smk"
include: "rules/pretrain.smk"
include: "rules/eval.smk"
include: "rules/posttrain.smk"
include: "rules/report.smk"
include: "rules/qualitative.smk"
include: "rules/release.smk"
