# A checkpoint: a hub source's files (hence its tokenize shard groups) are known once it is done.
checkpoint download:
    input:
        script=script("download_source.py"),
    output:
        P.DOWNLOAD,
    log:
        log("download", "source"),
    conda:
        "../envs/workflow.yaml"
    threads: 4
    params:
        spec=spec("download"),
    shell:
        "python {input.script:q} --spec {params.spec:q} --workers {threads} > {log:q} 2>&1"


rule prefetch:
    input:
        script=script("prefetch.py"),
    output:
        P.PREFETCH,
    log:
        log("prefetch"),
    localrule: True
    conda:
        "../envs/workflow.yaml"
    params:
        spec=spec("prefetch"),
    shell:
        "python {input.script:q} --spec {params.spec:q} > {log:q} 2>&1"
