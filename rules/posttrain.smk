# Post-training with TRL: SFT variants and DPO on top of a base model, then a generation check.
# One script, posttrain.py, runs both; several GPUs or nodes (FSDP) come from the entry's
# nodes / gpus_per_node, launched by the script like pretraining.


rule sft:
    input:
        unpack(posttrain_inputs),
        script=script("posttrain.py"),
    output:
        summary="results/posttrain/{name}/summary.json",
        metrics="results/posttrain/{name}/train_metrics.csv",
    log:
        "results/logs/posttrain/{name}.log",
    wildcard_constraints:
        name=posttrain_regex("sft"),
    conda:
        "../envs/workflow.yaml"
    threads: 2
    resources:
        nodes=lambda w: POSTTRAIN[w.name]["nodes"],
        tasks=lambda w: POSTTRAIN[w.name]["nodes"],
    params:
        spec=lambda w: json.dumps(posttrain_spec(w.name), sort_keys=True),
        nproc=lambda w: POSTTRAIN[w.name]["gpus_per_node"],
        base_id=lambda w: model_identity(POSTTRAIN[w.name]["base"]),
    shell:
        "python {input.script} --method sft --spec {params.spec:q} "
        "--run-dir results/posttrain/{wildcards.name} --metrics {output.metrics} "
        "--summary {output.summary} --threads {threads} --nodes {resources.nodes} "
        "--nproc-per-node {params.nproc} > {log} 2>&1"


rule dpo:
    input:
        unpack(posttrain_inputs),
        script=script("posttrain.py"),
    output:
        summary="results/posttrain/{name}/summary.json",
        metrics="results/posttrain/{name}/train_metrics.csv",
    log:
        "results/logs/posttrain/{name}.log",
    wildcard_constraints:
        name=posttrain_regex("dpo"),
    conda:
        "../envs/workflow.yaml"
    threads: 2
    resources:
        nodes=lambda w: POSTTRAIN[w.name]["nodes"],
        tasks=lambda w: POSTTRAIN[w.name]["nodes"],
    params:
        spec=lambda w: json.dumps(posttrain_spec(w.name), sort_keys=True),
        nproc=lambda w: POSTTRAIN[w.name]["gpus_per_node"],
        base_id=lambda w: model_identity(POSTTRAIN[w.name]["base"]),
    shell:
        "python {input.script} --method dpo --spec {params.spec:q} "
        "--run-dir results/posttrain/{wildcards.name} --metrics {output.metrics} "
        "--summary {output.summary} --threads {threads} --nodes {resources.nodes} "
        "--nproc-per-node {params.nproc} > {log} 2>&1"


rule compare:
    input:
        evals=compare_evals,
        script=script("compare.py"),
    output:
        md="results/reports/{lang}/compare.md",
        csv="results/reports/{lang}/compare.csv",
        png="results/reports/{lang}/compare.png",
        delta_md="results/reports/{lang}/sft_delta.md",
        delta_csv="results/reports/{lang}/sft_delta.csv",
    log:
        "results/logs/compare/{lang}.log",
    localrule: True
    conda:
        "../envs/workflow.yaml"
    params:
        spec=lambda w: json.dumps(compare_spec(w.lang), sort_keys=True),
    shell:
        "python {input.script} --spec {params.spec:q} --evals-dir results/evals "
        "--table-md {output.md} --table-csv {output.csv} --figure {output.png} "
        "--delta-md {output.delta_md} --delta-csv {output.delta_csv} > {log} 2>&1"
