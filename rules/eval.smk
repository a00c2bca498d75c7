rule evaluate:
    input:
        script=script("run_lm_eval.py"),
        model=model_input,
    output:
        P.EVAL,
    log:
        log("evals", "model", "task"),
    conda:
        "../envs/workflow.yaml"
    threads: 1
    params:
        spec=spec("evaluate"),
    shell:
        "python {input.script:q} --spec {params.spec:q} --threads {threads} > {log:q} 2>&1"
