rule evaluate:
    input:
        script=script("evaluate.py"),
        model=model_input,
    output:
        "results/evals/{model}/{task}.json",
    log:
        "results/logs/evals/{model}/{task}.log",
    conda:
        "../envs/workflow.yaml"
    threads: 1
    params:
        model_path=model_path,
        args=eval_args,
        versions=EVAL_VERSIONS,
        model_id=lambda w: model_identity(w.model),
    shell:
        "python {input.script} --model {wildcards.model} "
        "--model-path {params.model_path} --task {wildcards.task} {params.args} "
        "--threads {threads} --output {output} > {log} 2>&1"
