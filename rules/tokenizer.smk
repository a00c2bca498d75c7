rule train_tokenizer:
    input:
        script=script("train_tokenizer.py"),
        shards=tokenizer_train_files,
    output:
        directory("results/tokenizers/{tokenizer}"),
    log:
        "results/logs/train_tokenizer/{tokenizer}.log",
    conda:
        "../envs/workflow.yaml"
    params:
        sources=tokenizer_train_args,
        vocab=lambda w: config["tokenizers"][w.tokenizer]["train"]["vocab_size"],
        min_freq=lambda w: config["tokenizers"][w.tokenizer]["train"].get(
            "min_frequency", 2
        ),
    shell:
        "python {input.script} {params.sources} "
        "--vocab-size {params.vocab} --min-frequency {params.min_freq} "
        "--output {output} > {log} 2>&1"
