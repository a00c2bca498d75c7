# Validation, wildcard constraints and thin glue: everything else is the plan (zflow.plan),
# unit-tested without Snakemake. Rules hand each script one spec file (PLAN.spec_file), named by
# its content's hash: a changed spec is a changed param, so the job re-runs.
import os
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

SCRIPTS = Path(workflow.basedir) / "workflow" / "scripts"
sys.path.insert(0, str(SCRIPTS))

from zflow import paths as P  # noqa: E402
from zflow.inputs import check_yaml  # noqa: E402
from zflow.plan import ConfigError, Plan  # noqa: E402

# The config files read strictly first (zflow.inputs: the file and line of a syntax error or a
# tab, of a key given twice). Snakemake reads --configfile files before this runs: a syntax
# error there stops it first, naming neither (`python -m zflow.inputs FILE` does).
try:
    check_yaml(workflow.overwrite_configfiles or ["config/config.yaml"])
except ConfigError as e:
    raise WorkflowError(str(e)) from None

# The embedded default, unless configs are given with --configfile (the slurm profile's
# production config): those replace it instead of being merged into it.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


try:
    PLAN = Plan(config)
except ConfigError as e:
    raise WorkflowError(str(e)) from None
LANGS = PLAN.langs
os.environ.update(PLAN.job_env())


wildcard_constraints:
    lang=r"[a-z]{2,3}",
    source=P.NAME,
    tokenizer=P.NAME,
    model=P.NAME,
    task=P.NAME,
    step=r"\d+",
    table=P.NAME,


def script(name):
    """A script of workflow/scripts, as a job input (editing it makes its outputs stale)."""
    return os.path.relpath(SCRIPTS / name)


def spec(rule):
    """The ``spec`` param of a rule: the path of the job's spec file."""
    return lambda w: PLAN.spec_file(rule, **dict(w.items()))


def log(rule, *keys):
    """results/logs/<rule>/{key1}/{key2}.log (the job's own wildcards)."""
    return P.log(rule, os.path.join(*("{%s}" % k for k in keys)) if keys else rule)


def reported(path, caption, subcategory, kind, category="{lang}", table=None):
    """An output shown in the HTML report (`snakemake --report`), captioned by
    workflow/report/<caption>.rst, under its language and stage."""
    return report(
        path,
        caption=f"../workflow/report/{caption}.rst",
        category=category,
        subcategory=subcategory,
        labels={"table": table or caption, "kind": kind},
    )


def wait_for(dep):
    """A job on a checkpoint waits for its checkpoint rule only if the file is not on disk
    and current; the file is ancient (a checkpoint never re-runs jobs by modification time).
    """
    if dep.wait_for:
        step = {"step": str(dep.step)} if dep.step else {}
        getattr(checkpoints, dep.wait_for).get(lang=dep.lang, **step)
    if dep.path is None:
        return []
    return [ancient(dep.path)] if dep.ancient else [dep.path]


def model_input(w):
    return wait_for(PLAN.dependency(w.model))


def unknown_language(wildcards):
    raise WorkflowError(
        f"unknown target language '{wildcards.name}' in target 'all_{wildcards.name}': "
        f"config key 'languages' defines {', '.join(LANGS)}"
    )


def hub_downloaded(source):
    """A hub source's files (its tokenize shard groups) are known once its download is done."""
    if PLAN.is_hub_source(source):
        checkpoints.download.get(source=source)


def group_shards(w):
    """A shard group's parquet files, ancient: its spec's content checksum re-runs it."""
    hub_downloaded(w.source)
    return [ancient(f) for f in PLAN.group_inputs(w.source, w.group)]


def group_stats(w):
    hub_downloaded(w.source)
    return PLAN.group_stats_files(w.tokenizer, w.source)
