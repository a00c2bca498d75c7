rule tokenize:
    input:
        script=script("tokenize_source.py"),
        shards=lambda w: PLAN.source_inputs(w.source),
        tokenizer=lambda w: PLAN.tokenizer_inputs(w.tokenizer),
    output:
        data=directory(P.TOKENIZED),
        stats=P.TOKENIZED_STATS,
    log:
        log("tokenize", "tokenizer", "source"),
    conda:
        "../envs/workflow.yaml"
    threads: 2
    params:
        spec=spec("tokenize"),
    shell:
        "python {input.script:q} --spec {params.spec:q} --workers {threads} > {log:q} 2>&1"
