# Checkpoint rules: evals of a checkpoint already on disk (and made with the configured
# settings) never wait for these jobs; the others are scheduled once they have run. A continued
# pretraining (pretrain.init_from) waits for the model it starts from.
checkpoint pretrain:
    input:
        unpack(lambda w: PLAN.segment_inputs(w.lang)),
        init=lambda w: wait_for(PLAN.init_dependency(w.lang)),
        script=script("pretrain.py"),
    output:
        metrics=P.TRAIN_METRICS,
        summary=P.TRAIN_SUMMARY,
    log:
        log("pretrain", "lang"),
    wildcard_constraints:
        lang=PLAN.langs_regex("hf"),
    conda:
        "../envs/workflow.yaml"
    threads: 2
    resources:
        nodes=lambda w: PLAN.nodes(w.lang),
        tasks=lambda w: PLAN.nodes(w.lang),
    params:
        spec=spec("pretrain"),
    shell:
        "python {input.script:q} --spec {params.spec:q} --threads {threads} > {log:q} 2>&1"


# pretrain.segment_steps: the same run in jobs that each end at a checkpoint, so that its evals
# start while the next segment trains; the last segment is `pretrain` (metrics, summary).
checkpoint pretrain_segment:
    input:
        unpack(lambda w: PLAN.segment_inputs(w.lang, int(w.step))),
        init=lambda w: wait_for(PLAN.init_dependency(w.lang)),
        script=script("pretrain.py"),
    output:
        P.PRETRAIN_SEGMENT,
    log:
        log("pretrain", "lang", "step"),
    wildcard_constraints:
        lang=PLAN.langs_regex("hf"),
    conda:
        "../envs/workflow.yaml"
    threads: 2
    resources:
        nodes=lambda w: PLAN.nodes(w.lang),
        tasks=lambda w: PLAN.nodes(w.lang),
    params:
        spec=spec("pretrain_segment"),
    shell:
        "python {input.script:q} --spec {params.spec:q} --threads {threads} > {log:q} 2>&1"


rule nanotron_config:
    input:
        unpack(lambda w: PLAN.pretrain_inputs(w.lang)),
        script=script("nanotron_config.py"),
    output:
        P.NANOTRON_YAML,
    log:
        log("nanotron_config", "lang"),
    wildcard_constraints:
        lang=PLAN.langs_regex("nanotron"),
    conda:
        "../envs/workflow.yaml"
    params:
        spec=spec("nanotron_config"),
    shell:
        "python {input.script:q} --spec {params.spec:q} > {log:q} 2>&1"


checkpoint pretrain_nanotron:
    input:
        config=P.NANOTRON_YAML,
        script=script("nanotron_train.py"),
    output:
        metrics=P.TRAIN_METRICS,
        summary=P.TRAIN_SUMMARY,
    log:
        log("pretrain", "lang"),
    wildcard_constraints:
        lang=PLAN.langs_regex("nanotron"),
    # the job script is the workflow's; nanotron runs in pretrain.nanotron.python (one environment,
    # built by `make nanotron-env`, not a second one from envs/nanotron.yaml under --sdm conda)
    conda:
        "../envs/workflow.yaml"
    resources:
        nodes=lambda w: PLAN.nodes(w.lang),
        tasks=lambda w: PLAN.nodes(w.lang),
    params:
        spec=spec("pretrain_nanotron"),
    shell:
        "python {input.script:q} --spec {params.spec:q} > {log:q} 2>&1"


rule convert_checkpoint:
    input:
        step=lambda w: wait_for(PLAN.nanotron_step_dependency(w.lang, int(w.step))),
        script=script("convert_nanotron.py"),
    output:
        directory(P.CONVERTED),
    log:
        log("convert", "lang", "step"),
    wildcard_constraints:
        lang=PLAN.langs_regex("nanotron"),
    conda:
        "../envs/workflow.yaml"
    params:
        spec=spec("convert_checkpoint"),
    shell:
        "python {input.script:q} --spec {params.spec:q} > {log:q} 2>&1"
