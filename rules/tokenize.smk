# Tokenize fan-out: one job per shard group of a source (zflow.data.shard_groups), then a cheap
# local job merging the groups' stats. A hub source's groups are known once its download (a
# checkpoint) is on disk. Parquet files are `ancient`: a group re-runs when their content
# checksum (in its spec) changes, never because a file was touched.
# (input functions: rules/common.smk)


rule tokenize:
    input:
        script=script("tokenize_source.py"),
        shards=group_shards,
        tokenizer=lambda w: PLAN.tokenizer_inputs(w.tokenizer),
    output:
        data=directory(P.TOKENIZED_GROUP),
        stats=P.TOKENIZED_GROUP_STATS,
    log:
        log("tokenize", "tokenizer", "source", "group"),
    wildcard_constraints:
        group=r"g\d{5}",  # zflow.data.GROUP
    conda:
        "../envs/workflow.yaml"
    threads: 2
    params:
        spec=spec("tokenize"),
    shell:
        "python {input.script:q} --spec {params.spec:q} --workers {threads} > {log:q} 2>&1"


rule tokenize_stats:
    input:
        script=script("tokenize_stats.py"),
        groups=group_stats,
    output:
        P.TOKENIZED_STATS,
    log:
        log("tokenize_stats", "tokenizer", "source"),
    localrule: True
    conda:
        "../envs/workflow.yaml"
    params:
        spec=spec("tokenize_stats"),
    shell:
        "python {input.script:q} --spec {params.spec:q} > {log:q} 2>&1"
