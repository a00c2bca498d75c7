# The qualitative benchmark: each model answers each suite (locally, or through an
# OpenAI-compatible endpoint), each answers file is scored (rule checks, a judge, human scores
# from the filled sheet), and one report reads every score. A local judge is served by the
# scoring job itself (zflow/serve.py: `transformers serve` on 127.0.0.1, always stopped).
rule qualitative_answer:
    input:
        script=script("qualitative_answer.py"),
        suite=lambda w: PLAN.qualitative_suite_file(w.suite),
        model=lambda w: wait_for(PLAN.qualitative_dependency(w.model)),
    output:
        P.QUALITATIVE_ANSWERS,
    log:
        log("qualitative_answer", "model", "suite"),
    wildcard_constraints:
        model=PLAN.qualitative_regex("model"),
        suite=PLAN.qualitative_regex("suite"),
    conda:
        "../envs/workflow.yaml"
    threads: 1
    params:
        spec=spec("qualitative_answer"),
    shell:
        "python {input.script:q} --spec {params.spec:q} --threads {threads} > {log:q} 2>&1"


rule qualitative_score:
    input:
        script=script("qualitative_score.py"),
        suite=lambda w: PLAN.qualitative_suite_file(w.suite),
        answers=P.QUALITATIVE_ANSWERS,
        judge=lambda w: wait_for(PLAN.qualitative_judge_dependency()),
    output:
        scores=P.QUALITATIVE_SCORES,
        sheet=P.QUALITATIVE_JOB_SHEET,
    log:
        log("qualitative_score", "model", "suite"),
    wildcard_constraints:
        model=PLAN.qualitative_regex("model"),
        suite=PLAN.qualitative_regex("suite"),
    conda:
        "../envs/workflow.yaml"
    threads: 1
    params:
        spec=spec("qualitative_score"),
    shell:
        "python {input.script:q} --spec {params.spec:q} --threads {threads} > {log:q} 2>&1"


rule qualitative_report:
    input:
        scores=PLAN.qualitative_scores(),
        suites=[PLAN.qualitative_suite_file(s) for s in PLAN.qualitative_suites()],
        script=script("qualitative_report.py"),
    output:
        **{
            t: reported(
                f, "qualitative", "Qualitative", "table", "Qualitative", table=t
            )
            for t, f in PLAN.qualitative_outputs().items()
            if t not in ("md", "png", "sheet")
        },
        md=P.QUALITATIVE_MD,
        png=reported(
            P.QUALITATIVE_PNG, "qualitative", "Qualitative", "figure", "Qualitative"
        ),
        sheet=P.QUALITATIVE_SHEET,
    log:
        log("qualitative_report"),
    localrule: True
    conda:
        "../envs/workflow.yaml"
    params:
        spec=spec("qualitative_report"),
    shell:
        "python {input.script:q} --spec {params.spec:q} > {log:q} 2>&1"
