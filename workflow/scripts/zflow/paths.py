"""Every results path of the workflow, in one place: rules, the plan and scripts import these.

Patterns hold Snakemake-style wildcards (``{lang}``, ``{model}``, ...); ``fmt`` fills them.
Names inside a run directory (``RUN_JSON``, ``STATE``, ...) are what the scripts write there.
"""

from __future__ import annotations

# A user-chosen name that becomes a path component or a wildcard (the schema's $defs/name,
# anchored there; rules/common.smk constrains the wildcards with it): never "." or "..".
NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"

# inputs fetched from the hub
DOWNLOAD = "results/downloads/{source}.json"
PREFETCH = "results/prefetch.json"

# tokenizers and tokenized data
TOKENIZER = "results/tokenizers/{tokenizer}"
# a source's tokenized folder holds one folder per shard group (one tokenize job each); the
# pretraining readers read it recursively. TOKENIZED_STATS merges the groups' stats.
TOKENIZED = "results/tokenized/{tokenizer}/{source}"
TOKENIZED_GROUP = TOKENIZED + "/{group}"
TOKENIZED_STATS = "results/tokenized/{tokenizer}/{source}.stats.json"
TOKENIZED_GROUP_STATS = "results/tokenized/{tokenizer}/{source}.groups/{group}.stats.json"
TOKENIZE_WORK = "results/logs/tokenize/{tokenizer}/{source}/{group}"  # resumable datatrove state

# pretraining (both backends)
PRETRAIN_RUN = "results/pretrain/{lang}"
TRAIN_METRICS = PRETRAIN_RUN + "/train_metrics.csv"
TRAIN_SUMMARY = PRETRAIN_RUN + "/train_summary.json"
# an intermediate pretraining job (pretrain.segment_steps): trained until step {step}
PRETRAIN_SEGMENT = PRETRAIN_RUN + "/segments/step-{step}.json"
HF_CHECKPOINTS = PRETRAIN_RUN + "/checkpoints"
HF_CHECKPOINT = HF_CHECKPOINTS + "/step-{step}"
NANOTRON_YAML = PRETRAIN_RUN + "/nanotron.yaml"
NANOTRON_LOG = "results/logs/pretrain/{lang}.nanotron.log"
NANOTRON_CHECKPOINTS = PRETRAIN_RUN + "/nanotron_checkpoints"
NANOTRON_STEP = NANOTRON_CHECKPOINTS + "/{step}"
CONVERTED = "results/models/{lang}-step{step}"

# post-training
POSTTRAIN_RUN = "results/posttrain/{name}"
POSTTRAIN_MODEL = "results/posttrain/{name}/model"
POSTTRAIN_SUMMARY = "results/posttrain/{name}/summary.json"
POSTTRAIN_METRICS = "results/posttrain/{name}/train_metrics.csv"

# evals and reports
EVAL = "results/evals/{model}/{task}.json"
REPORT_DIR = "results/reports/{lang}"
PROGRESSION = REPORT_DIR + "/progression.{ext}"
LOSS_PNG = REPORT_DIR + "/loss.png"
COMPARE = REPORT_DIR + "/compare.{ext}"
COMPARE_GROUP_PNG = REPORT_DIR + "/compare_{group}.png"
SFT_DELTA = REPORT_DIR + "/sft_delta.{ext}"
TABLE = REPORT_DIR + "/tables/{table}.{ext}"
REPORT_MD = "results/reports/report.md"
EVALS_CSV = "results/reports/evals.csv"  # every eval behind the report: values, command, versions

# the qualitative benchmark: one model on one suite (answers, scores, its scoring sheet), and the
# report of them all (its tables are QUALITATIVE_TABLE with table = leaderboard, per_task, delta,
# flags, winners, failures; the scoring sheet of every answer, for a person to fill)
QUALITATIVE = "results/qualitative/{model}/{suite}"
QUALITATIVE_ANSWERS = QUALITATIVE + ".answers.jsonl"
QUALITATIVE_SCORES = QUALITATIVE + ".scores.jsonl"
QUALITATIVE_JOB_SHEET = QUALITATIVE + ".sheet.csv"
QUALITATIVE_REPORT = "results/reports/qualitative"
QUALITATIVE_MD = QUALITATIVE_REPORT + "/qualitative.md"
QUALITATIVE_TABLE = QUALITATIVE_REPORT + "/{table}.csv"
QUALITATIVE_PNG = QUALITATIVE_REPORT + "/leaderboard.png"
QUALITATIVE_SHEET = QUALITATIVE_REPORT + "/scoring_sheet.csv"

# a release: the hub-ready folder of one model (weights, tokenizer, generation config, the
# model card README.md, the AI Act training-content summary, provenance.json), and what its
# upload did (or, in a dry run, would do)
RELEASE = "results/release/{model}"
RELEASE_UPLOAD = "results/release/{model}.upload.json"
RELEASE_CARD = "README.md"  # names inside a release folder
RELEASE_SUMMARY_MD = "training_content_summary.md"
RELEASE_SUMMARY_JSON = "training_content_summary.json"
RELEASE_PROVENANCE = "provenance.json"
RELEASE_CONFIG = "zflow_config.yaml"  # the validated config, every default filled in

LOG = "results/logs/{rule}/{key}.log"

# each job's spec, named by its content's hash (so a changed spec is a changed rule param)
SPECS = ".snakemake/zflow/specs"

# names inside run directories
RUN_JSON = "run.json"  # a run's identity (zflow.identity)
STATE = "state"  # Trainer states: state/checkpoint-<N>/ (COMPLETE-marked)
CHECKPOINTS = "checkpoints"  # exported HF checkpoints: checkpoints/step-<N>/
SUPERSEDED = "superseded"  # runs of other settings, moved aside, never deleted
MARKER = "zflow_checkpoint.json"  # in every HF checkpoint / converted model: step, identity
POSTTRAIN_META = "zflow_posttrain.json"  # in every post-trained model directory
STATE_METRICS = "state/metrics.csv"  # appended while training; copied to the metrics output
TENSORBOARD = "tensorboard"  # TensorBoard event files of a training run (zflow.tracking)


def fmt(pattern: str, **wildcards) -> str:
    return pattern.format(**wildcards)


def in_run(pattern: str, run_dir: str) -> str:
    """A pretraining path (TRAIN_METRICS, ...) inside another run directory (tests, benchmarks)."""
    return run_dir + pattern[len(PRETRAIN_RUN):]


def marker(model_dir: str) -> str:
    return f"{model_dir}/{MARKER}"


def log(rule: str, key: str) -> str:
    return LOG.format(rule=rule, key=key)
