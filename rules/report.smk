# The report: tables as Markdown (report.md), CSV (machine-readable) and HTML, figures as PNG;
# the HTML and PNG files are in the HTML report (`make report`: snakemake --report).
rule report:
    input:
        evals=lambda w: PLAN.eval_files(w.lang),
        metrics=P.TRAIN_METRICS,
        script=script("report.py"),
    output:
        md=P.fmt(P.PROGRESSION, lang="{lang}", ext="md"),
        csv=P.fmt(P.PROGRESSION, lang="{lang}", ext="csv"),
        html=reported(
            P.fmt(P.PROGRESSION, lang="{lang}", ext="html"),
            "progression",
            "Pretraining",
            "table",
        ),
        png=reported(
            P.fmt(P.PROGRESSION, lang="{lang}", ext="png"),
            "progression",
            "Pretraining",
            "figure",
        ),
        loss=reported(P.LOSS_PNG, "loss", "Pretraining", "figure"),
    log:
        log("report", "lang"),
    localrule: True
    conda:
        "../envs/workflow.yaml"
    params:
        spec=spec("report"),
    shell:
        "python {input.script:q} --spec {params.spec:q} > {log:q} 2>&1"


rule compare:
    input:
        evals=lambda w: PLAN.compare_evals(w.lang),
        script=script("compare.py"),
    output:
        **{
            k: reported(v, "compare", "Post-training", "figure", table=k)
            for k, v in PLAN.compare_outputs("{lang}").items()
            if k.startswith("png")
        },
        md=P.fmt(P.COMPARE, lang="{lang}", ext="md"),
        csv=P.fmt(P.COMPARE, lang="{lang}", ext="csv"),
        html=reported(
            P.fmt(P.COMPARE, lang="{lang}", ext="html"),
            "compare",
            "Post-training",
            "table",
        ),
        delta_md=P.fmt(P.SFT_DELTA, lang="{lang}", ext="md"),
        delta_csv=reported(
            P.fmt(P.SFT_DELTA, lang="{lang}", ext="csv"),
            "sft_delta",
            "Post-training",
            "table",
        ),
    log:
        log("compare", "lang"),
    localrule: True
    conda:
        "../envs/workflow.yaml"
    params:
        spec=spec("compare"),
    shell:
        "python {input.script:q} --spec {params.spec:q} > {log:q} 2>&1"


rule table:
    input:
        evals=lambda w: PLAN.table_evals(w.table),
        script=script("make_table.py"),
    output:
        md=P.fmt(P.TABLE, lang="{lang}", table="{table}", ext="md"),
        csv=P.fmt(P.TABLE, lang="{lang}", table="{table}", ext="csv"),
        html=reported(
            P.fmt(P.TABLE, lang="{lang}", table="{table}", ext="html"),
            "table",
            "Tables",
            "table",
            table="{table}",
        ),
        png=reported(
            P.fmt(P.TABLE, lang="{lang}", table="{table}", ext="png"),
            "table",
            "Tables",
            "figure",
            table="{table}",
        ),
    log:
        log("table", "lang", "table"),
    localrule: True
    conda:
        "../envs/workflow.yaml"
    params:
        spec=spec("table"),
    shell:
        "python {input.script:q} --spec {params.spec:q} > {log:q} 2>&1"


# results/reports/report.md: every table in the seeds' order, and the evals behind them.
rule report_md:
    input:
        tables=[md for _, md in PLAN.report_order()],
        evals=PLAN.all_evals(),
        script=script("report_md.py"),
    output:
        md=P.REPORT_MD,
        evals=reported(
            P.EVALS_CSV,
            "evals",
            "Evals",
            "table",
            category="Provenance",
            table="evals",
        ),
    log:
        log("report_md"),
    localrule: True
    conda:
        "../envs/workflow.yaml"
    params:
        spec=spec("report_md"),
    shell:
        "python {input.script:q} --spec {params.spec:q} > {log:q} 2>&1"
