"""Upload a release folder to the hub with huggingface_hub (``HfApi.create_repo``, private by
default, then ``upload_folder``). The token only from the environment (HF_TOKEN). A dry run
(``release.<model>.upload.dry_run``, the default) writes the files and sizes it would push and
the request it would make, and which required fields (``release.<model>.required``) the card or
the config lacks (``refused``): a real upload refuses then, before any network call, naming each
(the config check already refuses a real upload whose config lacks one)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from zflow.io import die, spec_cli, write_json
from zflow.release import HIDDEN, released_files, required_problems


def request(spec: dict) -> dict:
    folder = Path(spec["folder"])
    files = [{"path": str(p.relative_to(folder)), "bytes": p.stat().st_size}
             for p in released_files(folder)]
    return {"repo_id": spec["repo_id"], "repo_type": "model", "private": spec["private"],
            "revision": spec["revision"], "commit_message": spec["commit_message"],
            "folder": spec["folder"], "files": files,
            "total_bytes": sum(f["bytes"] for f in files),
            "endpoint": os.environ.get("HF_ENDPOINT", "https://huggingface.co")}


def push(spec: dict, req: dict) -> dict:
    from huggingface_hub import HfApi

    token = os.environ.get("HF_TOKEN")
    if not token:
        die("HF_TOKEN is not set: the upload takes the token only from the environment")
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False"):
        die("HF_HUB_OFFLINE is set (config key 'offline' is true): set offline: false to upload")
    api = HfApi(endpoint=req["endpoint"], token=token)
    url = api.create_repo(spec["repo_id"], private=spec["private"], exist_ok=True)
    if spec["revision"] != "main":
        api.create_branch(spec["repo_id"], branch=spec["revision"], exist_ok=True)
    info = api.upload_folder(repo_id=spec["repo_id"], folder_path=spec["folder"],
                             revision=spec["revision"], commit_message=spec["commit_message"],
                             ignore_patterns=list(HIDDEN))  # a copy: it extends the list
    return {"repo_url": str(url), "commit_url": info.commit_url, "oid": info.oid}


def main(argv=None) -> None:
    spec, _ = spec_cli(__doc__, argv)
    problems = required_problems(spec["folder"], spec)
    if problems and not spec["dry_run"]:
        die(f"upload of {spec['model']} refused:\n  " + "\n  ".join(problems))
    req = request(spec)
    if spec["dry_run"]:
        if problems:  # what a real upload would refuse: shown, never pushed
            print(f"dry run: the upload of {spec['model']} would be refused:\n  "
                  + "\n  ".join(problems), file=sys.stderr)
        print(f"dry run: would create {'private' if spec['private'] else 'public'} repo "
              f"{spec['repo_id']} and push {len(req['files'])} files ({req['total_bytes']} "
              f"bytes) to {spec['revision']}: {spec['commit_message']!r}", file=sys.stderr)
        for f in req["files"]:
            print(f"  {f['path']}  {f['bytes']}", file=sys.stderr)
        write_json(spec["output"], {"dry_run": True, "request": req, "refused": problems})
        return
    write_json(spec["output"], {"dry_run": False, "request": req, "result": push(spec, req)})


if __name__ == "__main__":
    main()
