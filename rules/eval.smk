rule evaluate:
    input:
        model_input,
    output:
        "results/evals/{model}/{task}.json",
    params:
        model_path=model_path,
        args=eval_args,
    threads: 1
    log:
        "results/logs/evals/{model}/{task}.log",
    conda:
        "../envs/workflow.yaml"
    shell:
        "python {SCRIPTS}/evaluate.py --model {wildcards.model} "
        "--model-path {params.model_path} --task {wildcards.task} {params.args} "
        "--threads {threads} --output {output} > {log} 2>&1"
