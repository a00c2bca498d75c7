# Post-training with TRL: one rule for every method (posttrain.<name>.method: sft, dpo), then a
# generation check. Several GPUs or nodes (FSDP) come from the entry's nodes / gpus_per_node,
# launched by the script like pretraining.
rule posttrain:
    input:
        unpack(lambda w: PLAN.posttrain_inputs(w.name)),
        base=lambda w: wait_for(PLAN.dependency(PLAN.post[w.name]["base"])),
        script=script("posttrain.py"),
    output:
        summary=P.POSTTRAIN_SUMMARY,
        metrics=P.POSTTRAIN_METRICS,
    log:
        log("posttrain", "name"),
    wildcard_constraints:
        name=PLAN.posttrain_regex(),
    conda:
        "../envs/workflow.yaml"
    threads: 2
    resources:
        nodes=lambda w: PLAN.post[w.name]["nodes"],
        tasks=lambda w: PLAN.post[w.name]["nodes"],
    params:
        spec=spec("posttrain"),
    shell:
        "python {input.script:q} --spec {params.spec:q} --threads {threads} > {log:q} 2>&1"
