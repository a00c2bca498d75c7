rule tokenize:
    input:
        script=script("tokenize_source.py"),
        shards=source_files,
        tokenizer=tokenizer_input,
    output:
        data=directory("results/tokenized/{tokenizer}/{source}"),
        stats="results/tokenized/{tokenizer}/{source}.stats.json",
    log:
        "results/logs/tokenize/{tokenizer}/{source}.log",
    conda:
        "../envs/workflow.yaml"
    threads: 2
    params:
        src=lambda w: source_dir(w.source),
        text_key=lambda w: config["sources"][w.source].get("text_key", "text"),
        glob=lambda w: source_glob(w.source),
        tok=lambda w: tokenizer_ref(w.tokenizer),
        eos=eos_token,
        logging_dir=lambda w: f"results/logs/tokenize/{w.tokenizer}/{w.source}",
    shell:
        "python {input.script} --input {params.src} "
        "--text-key {params.text_key} --glob {params.glob:q} --tokenizer {params.tok} "
        "--eos-token {params.eos:q} --name {wildcards.source} --output {output.data} "
        "--stats {output.stats} --logging-dir {params.logging_dir} "
        "--workers {threads} > {log} 2>&1"
