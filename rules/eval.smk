# An out-of-memory is retried with half the batch (resources from Snakemake's attempt); any other
# failure writes a failure record in place of the JSON, so the report is still made and the next
# invocation runs the eval again (zflow.evals, "Failed evals").
rule evaluate:
    input:
        script=script("run_lm_eval.py"),
        model=model_input,
    output:
        P.EVAL,
    log:
        log("evals", "model", "task"),
    retries: PLAN.eval_retries()
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        eval_batch_size=lambda w, attempt: PLAN.eval_batch(attempt)[0],
        eval_max_batch_size=lambda w, attempt: PLAN.eval_batch(attempt)[1],
        eval_retries_left=lambda w, attempt: PLAN.eval_retries() + 1 - attempt,
    params:
        spec=spec("evaluate"),
    shell:
        "python {input.script:q} --spec {params.spec:q} --threads {threads}"
        " --batch-size {resources.eval_batch_size}"
        " --max-batch-size {resources.eval_max_batch_size}"
        " --retries-left {resources.eval_retries_left} --log {log:q} > {log:q} 2>&1"
