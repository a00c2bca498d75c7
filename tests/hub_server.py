"""A stand-in for the few Hugging Face Hub endpoints that ``HfApi.create_repo``,
``HfApi.create_branch`` and ``HfApi.upload_folder`` (huggingface_hub 2.4, regular files only) call,
served for real over HTTP on 127.0.0.1 from a thread.

Emulated (what huggingface_hub sends, what it expects back):

- ``POST /api/repos/create``  JSON ``{name, organization, visibility, type}``  ->
  ``{"url": ...}``; 409 when the repo exists (``exist_ok=True`` swallows it)
- ``POST /api/validate-yaml``  JSON ``{content, repoType}``  -> ``{"errors": [], "warnings": []}``
  (400 with ``errors`` when the front matter is not a YAML mapping)
- ``POST /api/{type}s/{ns}/{name}/branch/{branch}``  JSON ``{}`` or ``{startingPoint}``  -> ``{}``;
  409 when it exists
- ``POST /api/{type}s/{ns}/{name}/preupload/{rev}``  JSON ``{files: [{path, sample, size}]}``  ->
  ``{"files": [{path, uploadMode: "regular", shouldIgnore: false, oid: null}]}``: every file a
  regular git blob, so the client takes neither the LFS nor the xet path
- ``POST /api/{type}s/{ns}/{name}/commit/{rev}``  NDJSON: a ``header`` line ``{summary,
  description}`` then one ``file`` line per file ``{path, content (base64), encoding}``  ->
  ``{"commitUrl", "commitOid", "success": true, "hookOutput": ""}``; an ``lfsFile`` line is
  refused (400), since no LFS upload is emulated

Every request is recorded (method, path, query, headers, parsed body) in ``requests``, every
commit (repo, revision, message, decoded files) in ``commits``; header names are
lower-cased (HTTP's are case-insensitive; huggingface_hub sends ``authorization``). With
``token`` set, a request without exactly ``Authorization: Bearer <token>`` gets 401. Anything
else: 404, recorded too. upload_folder goes through huggingface_hub's pipelined path when hf_xet
is installed and through ``create_commit`` when not; both make these same requests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

REPO_API = re.compile(r"^/api/(?P<type>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)/"
                      r"(?P<action>preupload|commit|branch)/(?P<rev>.+)$")


class FakeHub:
    def __init__(self, token: str | None = None):
        self.token = token
        self.requests: list[dict] = []
        self.commits: list[dict] = []
        self.repos: dict[str, dict] = {}  # repo_id -> {type, private, branches: {name: files}}
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       name="fake-hub", daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def endpoints(self) -> list[tuple[str, str]]:
        return [(r["method"], r["path"]) for r in self.requests]

    # ------------------------------------------------------------------ the handlers

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _send(self, status: int, obj, headers: dict | None = None):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._dispatch()

            def do_POST(self):
                self._dispatch()

            def do_PUT(self):
                self._dispatch()

            def do_DELETE(self):
                self._dispatch()

            def _dispatch(self):
                split = urlsplit(self.path)
                raw = self._body()
                ctype = self.headers.get("Content-Type", "")
                if "ndjson" in ctype:
                    body = [json.loads(line) for line in raw.decode().splitlines() if line.strip()]
                elif "json" in ctype and raw:
                    body = json.loads(raw)
                else:
                    body = raw
                rec = {"method": self.command, "path": split.path,
                       "query": parse_qs(split.query),
                       "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                with hub.lock:
                    hub.requests.append(rec)
                    status, obj, headers = hub._answer(rec)
                self._send(status, obj, headers)

        return Handler

    def _answer(self, rec: dict):
        if self.token is not None and rec["headers"].get("authorization") != f"Bearer {self.token}":
            return 401, {"error": "Invalid credentials in Authorization header"}, {}
        method, path, body = rec["method"], rec["path"], rec["body"]
        if (method, path) == ("POST", "/api/repos/create"):
            return self._create_repo(body)
        if (method, path) == ("POST", "/api/validate-yaml"):
            return self._validate_yaml(body)
        m = REPO_API.match(path)
        if method == "POST" and m:
            repo_id, rev = m["repo"], unquote(m["rev"])
            repo = self.repos.get(repo_id)
            if repo is None or repo["type"] + "s" != m["type"]:
                return 404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"}
            return getattr(self, "_" + m["action"])(repo_id, repo, rev, body)
        return 404, {"error": f"not emulated: {method} {path}"}, {}

    def _create_repo(self, body: dict):
        repo_id = f"{body['organization']}/{body['name']}" if body.get("organization") \
            else body["name"]
        url = f"{self.url}/{repo_id}"
        if repo_id in self.repos:
            return 409, {"error": "You already created this model repo", "url": url}, {}
        self.repos[repo_id] = {"type": body.get("type") or "model",
                               "private": body.get("visibility") == "private",
                               "branches": {"main": {}}}
        return 200, {"url": url, "name": repo_id, "id": repo_id}, {}

    def _validate_yaml(self, body: dict):
        text = body["content"]
        if text.startswith("---"):
            meta = yaml.safe_load(text.split("---", 2)[1])
            if not isinstance(meta, dict):
                return 400, {"errors": [{"message": "metadata is not a mapping"}],
                             "warnings": []}, {}
        return 200, {"errors": [], "warnings": []}, {}

    def _branch(self, repo_id, repo, branch, body):
        if branch in repo["branches"]:
            return 409, {"error": "Reference already exists"}, {}
        start = body.get("startingPoint", "main") if isinstance(body, dict) else "main"
        repo["branches"][branch] = dict(repo["branches"].get(start, {}))
        return 200, {}, {}

    def _preupload(self, repo_id, repo, rev, body):
        if rev not in repo["branches"]:
            return 404, {"error": "Invalid rev id"}, {"X-Error-Code": "RevisionNotFound"}
        return 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                                "oid": None} for f in body["files"]]}, {}

    def _commit(self, repo_id, repo, rev, lines):
        if rev not in repo["branches"]:
            return 404, {"error": "Invalid rev id"}, {"X-Error-Code": "RevisionNotFound"}
        header = [x["value"] for x in lines if x["key"] == "header"]
        if len(header) != 1 or lines[0]["key"] != "header":
            return 400, {"error": "the first line must be the one header"}, {}
        files = {}
        for x in lines[1:]:
            if x["key"] != "file" or x["value"].get("encoding") != "base64":
                return 400, {"error": f"not emulated: commit line {x['key']}"}, {}
            files[x["value"]["path"]] = base64.b64decode(x["value"]["content"])
        h = hashlib.sha1(json.dumps([repo_id, rev, header[0], len(self.commits),
                                     sorted((p, hashlib.sha256(c).hexdigest())
                                            for p, c in files.items())]).encode())
        oid = h.hexdigest()
        repo["branches"][rev].update(files)
        self.commits.append({"repo_id": repo_id, "revision": rev, "summary": header[0]["summary"],
                             "description": header[0].get("description"), "files": files,
                             "oid": oid})
        return 200, {"success": True, "commitOid": oid, "hookOutput": "",
                     "commitUrl": f"{self.url}/{repo_id}/commit/{oid}"}, {}
