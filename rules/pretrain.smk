rule pretrain:
    input:
        unpack(pretrain_inputs),
        script=script("pretrain.py"),
    output:
        metrics="results/pretrain/{lang}/train_metrics.csv",
        summary="results/pretrain/{lang}/train_summary.json",
    log:
        "results/logs/pretrain/{lang}.log",
    conda:
        "../envs/workflow.yaml"
    threads: 2
    params:
        spec=lambda w: json.dumps(pretrain_spec(w.lang), sort_keys=True),
        run_dir=lambda w: f"results/pretrain/{w.lang}",
        nproc=lambda w: pretrain_threads(w.lang),
    shell:
        "if [ {params.nproc} -gt 1 ]; then "
        "  launch='torchrun --standalone --nproc_per_node {params.nproc}'; "
        "else launch=python; fi; "
        "$launch {input.script} --spec {params.spec:q} "
        "--run-dir {params.run_dir} --metrics {output.metrics} "
        "--summary {output.summary} --threads {threads} > {log} 2>&1"
