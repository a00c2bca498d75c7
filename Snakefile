# Small multilingual LMs end to end: parquet shards -> datatrove -> pretraining -> HF
# checkpoints -> lm-eval JSON -> progression tables and figures.
# Config: config/config.yaml (embedded default), validated by config/schemas/.


include: "rules/common.smk"


rule all:
    input:
        [f"results/reports/{lang}/progression.md" for lang in LANGS],
    default_target: True


for _lang in LANGS:

    rule:
        name:
            f"all_{_lang}"
        input:
            report_files(_lang),


include: "rules/tokenizer.smk"
include: "rules/tokenize.smk"
include: "rules/pretrain.smk"
include: "rules/eval.smk"
include: "rules/report.smk"
