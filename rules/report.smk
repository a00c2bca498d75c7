rule report:
    input:
        evals=lambda w: PLAN.eval_files(w.lang),
        metrics=P.TRAIN_METRICS,
        script=script("report.py"),
    output:
        md=P.fmt(P.PROGRESSION, lang="{lang}", ext="md"),
        csv=P.fmt(P.PROGRESSION, lang="{lang}", ext="csv"),
        png=P.fmt(P.PROGRESSION, lang="{lang}", ext="png"),
        loss=P.LOSS_PNG,
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
        md=P.fmt(P.COMPARE, lang="{lang}", ext="md"),
        csv=P.fmt(P.COMPARE, lang="{lang}", ext="csv"),
        png=P.fmt(P.COMPARE, lang="{lang}", ext="png"),
        delta_md=P.fmt(P.SFT_DELTA, lang="{lang}", ext="md"),
        delta_csv=P.fmt(P.SFT_DELTA, lang="{lang}", ext="csv"),
    log:
        log("compare", "lang"),
    localrule: True
    conda:
        "../envs/workflow.yaml"
    params:
        spec=spec("compare"),
    shell:
        "python {input.script:q} --spec {params.spec:q} > {log:q} 2>&1"
