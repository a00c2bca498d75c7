rule download:
    input:
        script=script("download_source.py"),
    output:
        "results/downloads/{source}.json",
    log:
        "results/logs/download/{source}.log",
    conda:
        "../envs/workflow.yaml"
    threads: 4
    params:
        repo=lambda w: hub_entry(w.source)["hub"]["repo_id"],
        allow=lambda w: " ".join(
            f"--allow {p!r}" for p in hub_entry(w.source)["hub"]["allow_patterns"]
        ),
        revision=lambda w: (
            f"--revision {config['sources'][w.source]['hub']['revision']}"
            if hub_entry(w.source)["hub"].get("revision")
            else ""
        ),
        local_dir=lambda w: hub_entry(w.source)["path"],
    shell:
        "python {input.script} --repo-id {params.repo} {params.allow} {params.revision} "
        "--local-dir {params.local_dir} --manifest {output} --workers {threads} > {log} 2>&1"


rule prefetch:
    input:
        script=script("prefetch.py"),
    output:
        "results/prefetch.json",
    log:
        "results/logs/prefetch.log",
    localrule: True
    conda:
        "../envs/workflow.yaml"
    params:
        args=prefetch_args(),
    shell:
        "python {input.script} {params.args} --output {output} > {log} 2>&1"
