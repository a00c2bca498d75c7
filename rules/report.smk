rule report:
    input:
        unpack(report_inputs),
        script=script("report.py"),
    output:
        md="results/reports/{lang}/progression.md",
        csv="results/reports/{lang}/progression.csv",
        png="results/reports/{lang}/progression.png",
        loss="results/reports/{lang}/loss.png",
    log:
        "results/logs/report/{lang}.log",
    localrule: True
    conda:
        "../envs/workflow.yaml"
    params:
        columns=report_columns,
        evals=lambda w, input: " ".join(f"--eval {e}" for e in input.evals),
    shell:
        "python {input.script} --lang {wildcards.lang} {params.columns} "
        "{params.evals} --train-metrics {input.metrics} --table-md {output.md} "
        "--table-csv {output.csv} --progression-png {output.png} "
        "--loss-png {output.loss} > {log} 2>&1"
