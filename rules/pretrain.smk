# A checkpoint rule: evals of a checkpoint already on disk (and made with the configured
# settings) never wait for this job; the others are scheduled once it has run.
checkpoint pretrain:
    input:
        unpack(pretrain_inputs),
        script=script("pretrain.py"),
    output:
        metrics="results/pretrain/{lang}/train_metrics.csv",
        summary="results/pretrain/{lang}/train_summary.json",
    log:
        "results/logs/pretrain/{lang}.log",
    wildcard_constraints:
        lang=langs_regex("hf"),
    conda:
        "../envs/workflow.yaml"
    threads: 2
    resources:
        nodes=lambda w: pretrain_nodes(w.lang),
        tasks=lambda w: pretrain_nodes(w.lang),
    params:
        spec=lambda w: json.dumps(pretrain_spec(w.lang), sort_keys=True),
        run_dir=lambda w: f"results/pretrain/{w.lang}",
        nproc=lambda w: pretrain_nproc(w.lang),
    shell:
        "python {input.script} --spec {params.spec:q} --run-dir {params.run_dir} "
        "--metrics {output.metrics} --summary {output.summary} --threads {threads} "
        "--nodes {resources.nodes} --nproc-per-node {params.nproc} > {log} 2>&1"


rule nanotron_config:
    input:
        unpack(pretrain_inputs),
        script=script("nanotron_config.py"),
    output:
        "results/pretrain/{lang}/nanotron.yaml",
    log:
        "results/logs/nanotron_config/{lang}.log",
    wildcard_constraints:
        lang=langs_regex("nanotron"),
    conda:
        "../envs/workflow.yaml"
    params:
        spec=lambda w: json.dumps(pretrain_spec(w.lang), sort_keys=True),
        checkpoints=lambda w: f"results/pretrain/{w.lang}/nanotron_checkpoints",
        vocab=lambda w: config["tokenizers"][lang_conf(w.lang)["tokenizer"]].get(
            "vocab_size", lang_conf(w.lang)["model"]["vocab_size"]
        ),
    shell:
        "python {input.script} --spec {params.spec:q} --checkpoints-path "
        "{params.checkpoints} --tokenizer-vocab {params.vocab} --output {output} > {log} 2>&1"


checkpoint pretrain_nanotron:
    input:
        config="results/pretrain/{lang}/nanotron.yaml",
        script=script("nanotron_train.py"),
    output:
        metrics="results/pretrain/{lang}/train_metrics.csv",
        summary="results/pretrain/{lang}/train_summary.json",
    log:
        "results/logs/pretrain/{lang}.log",
    wildcard_constraints:
        lang=langs_regex("nanotron"),
    conda:
        "../envs/nanotron.yaml"
    resources:
        nodes=lambda w: pretrain_nodes(w.lang),
        tasks=lambda w: pretrain_nodes(w.lang),
    params:
        checkout=lambda w: nano(w.lang)["checkout"],
        gpus=lambda w: nano(w.lang)["gpus_per_node"],
        peak=lambda w: nano(w.lang).get("peak_tflops", 312.0),
        nanotron_log=lambda w: f"results/logs/pretrain/{w.lang}.nanotron.log",
        identity=lambda w: pretrain_identity(w.lang),
    shell:
        "python {input.script} --config {input.config} --checkout {params.checkout} "
        "--nodes {resources.nodes} --gpus-per-node {params.gpus} --peak-tflops {params.peak} "
        "--log {params.nanotron_log} --metrics {output.metrics} "
        "--summary {output.summary} --identity {params.identity} > {log} 2>&1"


rule convert_checkpoint:
    input:
        step=lambda w: nanotron_step_marker(w.lang, int(w.step)),
        script=script("convert_nanotron.py"),
    output:
        directory("results/models/{lang}-step{step}"),
    log:
        "results/logs/convert/{lang}-step{step}.log",
    wildcard_constraints:
        lang=langs_regex("nanotron"),
    conda:
        "../envs/workflow.yaml"
    params:
        checkpoint=lambda w: f"results/pretrain/{w.lang}/nanotron_checkpoints/{w.step}",
        tokenizer=lambda w: tokenizer_ref(lang_conf(w.lang)["tokenizer"]),
        vocab=lambda w: lang_conf(w.lang)["model"]["vocab_size"],
        identity=lambda w: pretrain_identity(w.lang),
    shell:
        "python {input.script} --checkpoint {params.checkpoint} --output {output} "
        "--tokenizer {params.tokenizer} --vocab-size {params.vocab} > {log} 2>&1"
