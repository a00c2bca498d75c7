#!/usr/bin/env bash
# The wheels bench/gpu_check.sh installs on the GPU machine (bare, no network: Python 3.12 and
# its own torch): run HERE, on a machine with PyPI and the project's .venv, then carry .whl/.
#
#   bash bench/fetch_wheels.sh            # -> .whl/ (gitignored), prints the list and the total
#
# What: the packages of requirements.txt and requirements-gpu.txt and everything they need
# (Requires-Dist, markers evaluated for CPython 3.12 on Linux x86-64, the extras asked for), at
# the versions pinned there or else installed in .venv (the versions the tests pass with), less
#   - the packages of the GPU image (bench/gpu_image_packages.txt), kept as they are, except
#     the pinned ones whose version there differs and changes results (REPLACE: transformers);
#   - torch (the image's own CUDA build), and what the GPU machine never runs (EXCLUDE);
#   - datatrove's extras io and processing (NO_EXTRAS): the workflow uses its parquet reader
#     (pyarrow: in the image), tokenizer, executor and dataset, none of the extras' packages
#     (fasttext, trafilatura, babel, zstandard...: 45 MB of wheels).
# Wheels for CPython 3.12 manylinux x86-64 (pure-Python ones mostly; a few needs have C
# extensions); a package published only as a source archive is built into a pure wheel here.
# Then checks the set: every Requires-Dist of every wheel is met by another wheel or by the
# image, and the total is at most 60 MB (fails otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DEST=${DEST:-.whl}
MAX_MB=${MAX_MB:-60}
# pinned here, another version in the image, and it changes results: transformers (5.17 there),
# one of the packages every eval is keyed on (zflow.plan.EVAL_PACKAGES: lm_eval, transformers,
# torch; torch stays the image's CUDA build). The image's tokenizers 0.23.2 (pinned 0.23.3)
# meets transformers 5.23's need (>=0.23.1, <0.24) and is kept: 3.4 MB less.
REPLACE="transformers"
# left out: torch (the image's own); what the GPU machine never runs: Slurm's executor, the
# Snakefile formatter, the qualitative judge's server (`transformers serve`: fastapi, starlette,
# uvicorn, openai; the trimmed run of gpu_check.sh has no qualitative benchmark); pulp (16 MB, a
# bundled CBC solver): snakemake's ILP job scheduler, which falls back to its greedy scheduler
# when pulp is missing (gpu_check.sh asks for greedy)
EXCLUDE="torch snakemake-executor-plugin-slurm snakefmt pytest fastapi starlette uvicorn openai pulp"
NO_EXTRAS="datatrove"
PLATFORMS="--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64"

mkdir -p "$DEST"
rm -f "$DEST"/*.whl
list=$(mktemp)
trap 'rm -f "$list"' EXIT

# 1. the set: NAME==VERSION, one a line
REPLACE="$REPLACE" EXCLUDE="$EXCLUDE" NO_EXTRAS="$NO_EXTRAS" "$PY" - requirements.txt requirements-gpu.txt >"$list" <<'EOF'
import importlib.metadata as md
import os
import sys

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name as cn

ENV = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
       "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
       "implementation_name": "cpython", "platform_python_implementation": "CPython"}
image = {cn(line.split("==")[0].strip()) for line in open("bench/gpu_image_packages.txt")
         if line.strip() and not line.startswith("#")}
replace = {cn(n) for n in os.environ["REPLACE"].split()}
exclude = {cn(n) for n in os.environ["EXCLUDE"].split()}
no_extras = {cn(n) for n in os.environ["NO_EXTRAS"].split()}
roots, pins = [], {}
for f in sys.argv[1:]:
    for line in open(f):
        line = line.split("#")[0].strip()
        if line:
            r = Requirement(line)
            if cn(r.name) in no_extras:
                r.extras = set()
            roots.append(r)
            pins.update({cn(r.name): str(s.version) for s in r.specifier if s.operator == "=="})

need: dict[str, str] = {}
seen = set()


def walk(req: Requirement) -> None:
    name = cn(req.name)
    if name in exclude or (name, frozenset(req.extras)) in seen:
        return
    seen.add((name, frozenset(req.extras)))
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        dist = None
    version = pins.get(name) or (dist and dist.version)
    if version is None:
        sys.exit(f"fetch_wheels: {name} is neither pinned nor installed in .venv")
    if name in image and name not in replace:
        return  # the image's, with what it needs
    need[name] = version
    if dist is None:  # not installed here (a GPU-only package): its needs are checked in 3.
        return
    for r in map(Requirement, dist.requires or []):
        if r.marker is None or any(r.marker.evaluate({**ENV, "extra": e})
                                   for e in (req.extras or {""})):
            walk(r)


for r in roots:
    walk(r)
print("\n".join(f"{n}=={v}" for n, v in sorted(need.items())))
EOF

echo "fetching $(wc -l <"$list") packages into $DEST/: $(tr '\n' ' ' <"$list")"
# 2. download (a source-only package: built into a pure-Python wheel here)
while read -r spec; do
  if ! "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp $PLATFORMS -d "$DEST" "$spec" 2>/dev/null; then
    "$PY" -m pip wheel -q --no-deps --no-cache-dir -w "$DEST" "$spec" 2>&1 | grep -v "^WARNING: Location" || true
    ls "$DEST" | grep -qi "^$(echo "${spec%%==*}" | tr -- '-.' '__')-${spec#*==}-py" ||
      { echo "fetch_wheels: no wheel for $spec" >&2; exit 1; }
  fi
done <"$list"

# 3. check: one version each, every wheel pure or for CPython 3.12, every need met, the size
EXCLUDE="$EXCLUDE" "$PY" - "$DEST" "$MAX_MB" <<'EOF'
import os
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name as cn, parse_wheel_filename

ENV = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
       "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
       "implementation_name": "cpython", "platform_python_implementation": "CPython"}
dest, max_mb = Path(sys.argv[1]), float(sys.argv[2])
exclude = {cn(n) for n in os.environ["EXCLUDE"].split()}
image = {}
for line in open("bench/gpu_image_packages.txt"):
    if line.strip() and not line.startswith("#"):
        n, _, v = line.strip().partition("==")
        image[cn(n)] = v or None
wheels, problems = {}, []
for w in sorted(dest.glob("*.whl")):
    name, version, _, tags = parse_wheel_filename(w.name)
    if name in wheels:
        problems.append(f"two versions of {name}")
    if not any(t.interpreter in ("py3", "py312", "cp312") or t.abi == "abi3" for t in tags):
        problems.append(f"{w.name}: not for CPython 3.12")
    with zipfile.ZipFile(w) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        msg = Parser().parsestr(z.read(meta).decode())
    wheels[name] = (str(version), msg.get_all("Requires-Dist") or [], w)
have = {n: v for n, (v, _, _) in wheels.items()}
for name, (version, requires, w) in wheels.items():
    for r in map(Requirement, requires):
        if r.marker is not None and not r.marker.evaluate({**ENV, "extra": ""}):
            continue
        dep = cn(r.name)
        if dep in exclude:
            continue
        v = have.get(dep, image.get(dep))
        if dep not in have and dep not in image:
            problems.append(f"{name} {version} needs {r}: neither a wheel nor in the image")
        elif v and r.specifier and not r.specifier.contains(v, prereleases=True):
            problems.append(f"{name} {version} needs {r}: {dep} {v} is there")
total = sum(w.stat().st_size for _, _, w in wheels.values())
binary = sorted(n for n, (_, _, w) in wheels.items() if not w.name.endswith("-none-any.whl"))
print(f"{len(wheels)} wheels in {dest}/, {total / 1e6:.1f} MB (limit {max_mb:.0f} MB); "
      f"with C extensions (cp312 manylinux): {', '.join(binary) or 'none'}")
if total > max_mb * 1e6:
    problems.append(f"{total / 1e6:.1f} MB is over the {max_mb:.0f} MB limit")
if problems:
    sys.exit("fetch_wheels: " + "\n  ".join(["the set is not complete:", *problems]))
print("every need of every wheel is met by a wheel or by the image (left out on purpose: "
      f"{', '.join(sorted(exclude))})")
EOF
