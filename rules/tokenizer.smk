rule train_tokenizer:
    input:
        script=script("train_tokenizer.py"),
        shards=lambda w: PLAN.tokenizer_train_inputs(w.tokenizer),
    output:
        directory(P.TOKENIZER),
    log:
        log("train_tokenizer", "tokenizer"),
    conda:
        "../envs/workflow.yaml"
    params:
        spec=spec("train_tokenizer"),
    shell:
        "python {input.script:q} --spec {params.spec:q} > {log:q} 2>&1"
