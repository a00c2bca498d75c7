# Releases: a hub-ready folder per model of the config's `release` section (weights, tokenizer,
# generation config, model card, AI Act training-content summary, provenance), checked before
# it is published; `upload_<model>` pushes it (a dry run unless the config says otherwise).
rule release:
    input:
        unpack(lambda w: PLAN.release_inputs(w.model)),
        model=model_input,
        script=script("release.py"),
    output:
        directory(P.RELEASE),
    log:
        log("release", "model"),
    wildcard_constraints:
        model=PLAN.release_regex(),
    conda:
        "../envs/workflow.yaml"
    threads: 1
    params:
        spec=spec("release"),
    shell:
        "python {input.script:q} --spec {params.spec:q} --threads {threads} > {log:q} 2>&1"


rule upload:
    input:
        release=P.RELEASE,
        script=script("upload.py"),
    output:
        P.RELEASE_UPLOAD,
    log:
        log("upload", "model"),
    wildcard_constraints:
        model=PLAN.release_regex(),
    localrule: True
    conda:
        "../envs/workflow.yaml"
    params:
        spec=spec("upload"),
    shell:
        "python {input.script:q} --spec {params.spec:q} > {log:q} 2>&1"
