"""One environment, end to end: everything a pretrain_nanotron job starts runs in the interpreter
of ``languages.<lang>.pretrain.nanotron.python`` — the pre-flight, torchrun (``<python> -m
torch.distributed.run``, through srun on several nodes) and the build of nanotron's C++ data
helper — whatever python runs the job script and whatever PATH holds (the workflow's .venv first,
as under `make run` or with .venv active, no --sdm). An unset or broken interpreter is one error,
naming the key, before torchrun starts.

The "nanotron environment" here is a wrapper script that records each call, then execs the
interpreter running the tests; PATH starts with decoys (torchrun, python, python3,
python3-config) that record any call and fail.
"""

from __future__ import annotations

import copy
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from zflow import nanotron

STANDIN = REPO / "tools/smoke/nanotron"
PROD = yaml.safe_load((REPO / "config/zagreus.yaml").read_text())
DECOYS = ("torchrun", "python", "python3", "python3-config")


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def env(tmp_path, monkeypatch):
    """{python: the stand-in environment's interpreter, calls(): its recorded calls,
    decoys(): calls of PATH's decoys}; PATH = decoys, then the .venv's bin, then the rest."""
    log = tmp_path / "env-calls.txt"
    python = executable(tmp_path / "nanotron-env/bin/python", f'#!/bin/sh\nprintf "%s\\n" "$*" '
                        f'>> "{log}"\nexec "{sys.executable}" "$@"\n')
    decoy_log = tmp_path / "decoy-calls.txt"
    for name in DECOYS:
        executable(tmp_path / "decoys" / name,
                   f'#!/bin/sh\necho "{name} $*" >> "{decoy_log}"\nexit 97\n')
    monkeypatch.setenv("PATH", os.pathsep.join([str(tmp_path / "decoys"),
                                                str(REPO / ".venv/bin"), os.environ["PATH"]]))

    def lines(f: Path) -> list[str]:
        return f.read_text().splitlines() if f.exists() else []

    return {"python": str(python), "calls": lambda: lines(log),
            "decoys": lambda: lines(decoy_log)}


@pytest.fixture
def tokenizer(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({"<unk>": 0, "a": 1}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>").save_pretrained(
        tmp_path / "tok")
    return str(tmp_path / "tok")


def job(tmp_path, python, checkout, tokenizer, nodes=1, gpus_per_node=1):
    """A pretrain_nanotron job (test_nanotron_preflight's) with this interpreter and checkout."""
    from test_nanotron_preflight import job as preflight_job

    spec, cfg = preflight_job(tmp_path)
    cfg["tokenizer"]["tokenizer_name_or_path"] = tokenizer
    Path(spec["config"]).write_text(yaml.safe_dump(cfg))
    spec.update(python=python, checkout=str(checkout), nodes=nodes, gpus_per_node=gpus_per_node)
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    return spec, cfg


def recording_checkout(tmp_path) -> Path:
    """A stand-in checkout whose run_train.py records where it runs."""
    d = tmp_path / "recording-checkout"
    d.mkdir()
    (d / nanotron.STANDIN_MARKER).write_text("test stand-in\n")
    (d / "run_train.py").write_text(
        "import json, os, sys\n"
        "with open(os.environ['RUN_RECORD'], 'a') as f:\n"
        "    f.write(json.dumps({'executable': sys.executable, 'argv': sys.argv[1:],\n"
        "        'rank': os.environ.get('RANK'), 'world': os.environ.get('WORLD_SIZE'),\n"
        "        'path0': os.environ['PATH'].split(os.pathsep)[0]}) + '\\n')\n")
    return d


# ---------------------------------------------------------------- the command lines


def test_one_node_command_lines(env, tmp_path):
    from nanotron_train import launch_command, launch_env

    py = env["python"]
    spec = {"python": py, "checkout": "/shared/nanotron", "config": "results/pretrain/ita/n.yaml",
            "nodes": 1, "gpus_per_node": 8}
    assert launch_command(spec) == [
        py, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=8",
        "/shared/nanotron/run_train.py", "--config-file", "results/pretrain/ita/n.yaml"]
    assert launch_command({**spec, "gpus_per_node": 1})[:5] == [
        py, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"]  # torchrun even so
    e = launch_env(py)
    assert e["PATH"].split(os.pathsep)[0] == str(Path(py).parent)  # before the .venv's bin
    assert e["CUDA_DEVICE_MAX_CONNECTIONS"] == "1" and e["DEBUG_DL"] == "0"


def test_two_node_command_line_through_srun(env, tmp_path, monkeypatch):
    """Slurm faked: SLURM_JOB_ID, and squeue / scontrol answering as on an allocation of two
    nodes (the master's address from `scontrol show node`)."""
    from nanotron_train import launch_command

    executable(tmp_path / "decoys/squeue", "#!/bin/sh\necho 'gpu[01-02]'\n")
    executable(tmp_path / "decoys/scontrol",
               '#!/bin/sh\nif [ "$2" = hostnames ]; then printf "gpu01\\ngpu02\\n"; '
               'else echo "NodeName=gpu01 Arch=x86_64 NodeAddr=10.0.0.1 NodeHostName=gpu01"; fi\n')
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    py = env["python"]
    spec = {"python": py, "checkout": "/shared/nanotron", "config": "results/pretrain/ita/n.yaml",
            "nodes": 2, "gpus_per_node": 4}
    assert launch_command(spec) == [
        "srun", "--nodes=2", "--ntasks=2", "--ntasks-per-node=1",
        py, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=4",
        "--rdzv_backend=c10d", "--rdzv_endpoint=10.0.0.1:29642", "--rdzv_id=4242",
        "/shared/nanotron/run_train.py", "--config-file", "results/pretrain/ita/n.yaml"]


def test_launch_without_an_interpreter_is_as_before():
    """Other callers (the hf backend's relaunch) keep PATH's python and torchrun."""
    from zflow import launch

    assert launch.command(["s.py"], 1, 1) == ["python", "s.py"]
    assert launch.command(["s.py"], 1, 2)[:2] == ["torchrun", "--standalone"]


def test_the_config_names_the_interpreter_in_every_spec():
    from zflow.plan import Plan

    plan = Plan(PROD, check_files=False)
    for lang in ("ita", "spa", "por", "fra"):
        spec = plan.spec("pretrain_nanotron", lang=lang)
        assert spec["python"] == PROD["languages"][lang]["pretrain"]["nanotron"]["python"]
        assert spec["python"].endswith("-env/bin/python")  # `make nanotron-env`'s layout


# ---------------------------------------------------------------- a job, end to end


def test_the_job_runs_preflight_and_torchrun_in_the_interpreter(env, tmp_path, tokenizer,
                                                                 monkeypatch, capsys):
    import nanotron_train

    checkout = recording_checkout(tmp_path)
    spec, cfg = job(tmp_path, env["python"], checkout, tokenizer)
    record = tmp_path / "run-record.jsonl"
    monkeypatch.setenv("RUN_RECORD", str(record))
    nanotron_train.main(["--spec", str(tmp_path / "spec.json")])
    out = capsys.readouterr().out
    calls = env["calls"]()
    # the pre-flight, in the interpreter, zflow importable there
    assert calls[0].startswith("-m zflow.nanotron preflight "), calls
    assert f"pre-flight in {env['python']} (Python {sys.version.split()[0]}" in out
    assert "stand-in" in out and "checks are skipped" in out
    # torchrun: the interpreter's own, exactly this command line
    launched = [line for line in out.splitlines() if "torch.distributed.run" in line]
    assert launched == [f"{env['python']} -m torch.distributed.run --standalone "
                        f"--nproc_per_node=1 {checkout / 'run_train.py'} --config-file "
                        f"{spec['config']}"]
    assert calls[1] == (f"-m torch.distributed.run --standalone --nproc_per_node=1 "
                        f"{checkout / 'run_train.py'} --config-file {spec['config']}")
    ran = [json.loads(x) for x in record.read_text().splitlines()]
    assert len(ran) == 1 and ran[0]["world"] == "1" and ran[0]["rank"] == "0"
    assert ran[0]["argv"] == ["--config-file", spec["config"]]
    assert ran[0]["path0"] == str(Path(env["python"]).parent)
    # nothing from PATH: not its torchrun, python, python3 or python3-config
    assert env["decoys"]() == []


@pytest.mark.parametrize("case", ["unset", "missing", "directory", "not-executable",
                                  "not-python", "no-torch", "no-nanotron"])
def test_a_broken_interpreter_is_one_error_naming_the_key(env, tmp_path, tokenizer, monkeypatch,
                                                          capsys, case):
    import nanotron_train

    key = "languages.ita.pretrain.nanotron.python"
    checkout = recording_checkout(tmp_path)
    python, expect = {
        "unset": (None, f"{key} is not set"),
        "missing": (str(tmp_path / "gone/bin/python"), "does not exist"),
        "directory": (str(tmp_path / "nanotron-env"),
                      f"is a directory, not an interpreter; set it to "
                      f"{tmp_path / 'nanotron-env/bin/python'}"),
        "not-executable": (str(tmp_path / "plain.txt"), "is not executable"),
        "not-python": (str(executable(tmp_path / "false", "#!/bin/sh\nexit 3\n")),
                       "exited with 3 before answering"),
        "no-torch": (str(executable(tmp_path / "bare-env/bin/python",
                                    f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')),
                     "torch is not importable"),
        "no-nanotron": (env["python"], "nanotron is not importable"),
    }[case]
    (tmp_path / "plain.txt").write_text("")
    if case == "no-nanotron":  # a real checkout: nanotron itself is checked
        (checkout / nanotron.STANDIN_MARKER).unlink()
    spec, _ = job(tmp_path, python, checkout, tokenizer)
    monkeypatch.setenv("RUN_RECORD", str(tmp_path / "run-record.jsonl"))
    with pytest.raises(SystemExit):
        nanotron_train.main(["--spec", str(tmp_path / "spec.json")])
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "nothing was launched" in err
    line = next(x for x in err.splitlines() if expect in x)
    assert key in line, err
    assert not (tmp_path / "run-record.jsonl").exists()  # run_train.py never started
    assert env["decoys"]() == []
    if case == "no-nanotron":
        assert "make nanotron-env" in line and "pretrain.nanotron.python" in line


def test_unset_is_refused_when_the_job_is_planned():
    from zflow.plan import ConfigError, Plan

    cfg = copy.deepcopy(PROD)
    del cfg["languages"]["spa"]["pretrain"]["nanotron"]["python"]
    plan = Plan(cfg, check_files=False)  # the other languages' jobs are fine
    plan.spec("pretrain_nanotron", lang="ita")
    with pytest.raises(ConfigError, match=r"languages\.spa\.pretrain\.nanotron\.python is not "
                                          r"set.*make nanotron-env"):
        plan.spec("pretrain_nanotron", lang="spa")


def test_check_command_runs_the_preflight_per_language(env, tmp_path, monkeypatch):
    over = tmp_path / "over.yaml"
    langs = {lang: {"pretrain": {"nanotron": {"python": env["python"], "checkout": str(STANDIN)}}}
             for lang in ("ita", "spa")}
    langs["spa"]["pretrain"]["nanotron"]["python"] = str(tmp_path / "nope/bin/python")
    over.write_text(yaml.safe_dump({"languages": langs}))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # the hub tokenizer is not cached here
    p = subprocess.run([sys.executable, str(REPO / "workflow/scripts/nanotron_train.py"),
                        "--check", "--configfile", str(REPO / "config/zagreus.yaml"), str(over),
                        "--lang", "ita", "spa"], capture_output=True, text=True, cwd=REPO,
                       timeout=300)
    assert p.returncode == 1, p.stderr
    ita = p.stdout.split("\nspa:")[0]
    assert "pre-flight in " + env["python"] in ita and "does not load offline" in ita
    assert "languages.spa.pretrain.nanotron.python: " + str(tmp_path / "nope/bin/python") + \
        " does not exist" in p.stdout
    assert env["decoys"]() == []


# ---------------------------------------------------------------- nanotron's data helper

NEMO_MAKEFILE = """\
CXXFLAGS += -O3 -Wall -shared -std=c++11 -fPIC -fdiagnostics-color
CPPFLAGS += $(shell python3 -m pybind11 --includes)
LIBNAME = helpers
LIBEXT = $(shell python3-config --extension-suffix)

default: $(LIBNAME)$(LIBEXT)

%$(LIBEXT): %.cpp
\t$(CXX) $(CXXFLAGS) $(CPPFLAGS) $< -o $@
"""  # src/nanotron/data/nemo_dataset/Makefile at the pin, verbatim (licence header left out)
HELPERS_CPP = """\
#include <pybind11/pybind11.h>
int answer() { return 42; }
PYBIND11_MODULE(helpers, m) { m.def("answer", &answer); }
"""


def test_data_helper_is_built_for_the_interpreter_not_path(env, tmp_path, monkeypatch):
    """A nanotron package holding nanotron's own helper Makefile: the helper is built with the
    interpreter's headers, pybind11 and suffix (python3 / python3-config on PATH are decoys),
    and imports in that interpreter; a second build is make's no-op."""
    import sysconfig

    pytest.importorskip("pybind11")
    site = tmp_path / "site"
    nemo = site / "nanotron/data/nemo_dataset"
    nemo.mkdir(parents=True)
    for d in (site / "nanotron", site / "nanotron/data", nemo):
        (d / "__init__.py").write_text("")
    (nemo / "Makefile").write_text(NEMO_MAKEFILE)
    (nemo / "helpers.cpp").write_text(HELPERS_CPP)
    monkeypatch.setenv("PYTHONPATH", str(site))
    assert nanotron.build_data_helper(env["python"], "KEY") is None
    built = nemo / f"helpers{sysconfig.get_config_var('EXT_SUFFIX')}"
    assert built.exists()
    assert env["calls"]()[0] == "-m zflow.nanotron helper"
    assert env["decoys"]() == []  # neither python3 -m pybind11 nor python3-config ran
    p = subprocess.run([env["python"], "-c", "from nanotron.data.nemo_dataset import helpers; "
                        "print(helpers.answer())"], capture_output=True, text=True)
    assert p.stdout.strip() == "42", p.stderr
    mtime = built.stat().st_mtime
    assert nanotron.build_data_helper(env["python"], "KEY") is None and \
        built.stat().st_mtime == mtime
    (nemo / "helpers.cpp").write_text("this is not C++\n")
    os.utime(nemo / "helpers.cpp", (mtime + 10, mtime + 10))
    msg = nanotron.build_data_helper(env["python"], "KEY")
    assert msg.startswith("building nanotron's data helper for KEY = ") and "g++" in msg


def test_where_nanotron_runs_from_is_not_the_runs_identity():
    """Moving the environment or the checkout resumes the run; a training setting re-makes it."""
    from zflow.plan import pretrain_identity

    nano = {"checkout": "/a/nanotron", "python": "/a/env/bin/python", "dp": 8, "nodes": 1,
            "gpus_per_node": 8}
    base = pretrain_identity({"hidden_size": 64}, {"nanotron": nano}, [], "tok", 8)
    moved = {**nano, "checkout": "/b/nanotron", "python": "/b/env/bin/python"}
    assert pretrain_identity({"hidden_size": 64}, {"nanotron": moved}, [], "tok", 8) == base
    assert pretrain_identity({"hidden_size": 64}, {"nanotron": {**nano, "dp": 4}}, [], "tok",
                             8) != base
