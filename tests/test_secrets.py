"""Secrets never leave for another host nor land in a message or a file (docs/secrets.md).

Fake secrets (distinct random strings) are planted in the variable named by ``api_key_env``, in
an endpoint URL's userinfo and query, pasted into ``api_key_env`` and as an ``api_key:`` field;
the endpoint client runs against real local HTTP servers that redirect cross-host (127.0.0.1 ->
localhost on another port) and same-host; the config is checked in-process and through a
Snakemake dry run; two real qualitative jobs (an endpoint model, an endpoint judge) run through
Snakemake. Every error message and every file written under the test's folder is searched
(bytes) for every planted secret.
"""

from __future__ import annotations

import copy
import json
import secrets
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from conftest import REPO, copy_workflow, load_config, snakemake, write_config
from test_config_errors import dry_run_error

from zflow import endpoint, schema
from zflow.endpoint import EndpointError, redact_url
from zflow.plan import Plan
from zflow.schema import ConfigError

VAR = "ZFLOW_SECRETS_TEST_KEY"
MSGS = [{"role": "user", "content": "Capitale d'Italia?"}]


def planted(tag: str) -> str:
    """A fresh fake secret, unlike any other (and any text the workflow writes)."""
    return f"{tag}{secrets.token_hex(12)}"


def leaks(text, *found) -> list[str]:
    data = text if isinstance(text, bytes) else str(text).encode()
    return [s for s in found if s.encode() in data]


def files_holding(root: Path, found, skip=()) -> dict:
    """{file: the planted secrets in it} for every file under ``root`` (bytes), but ``skip``."""
    out = {}
    for f in sorted(root.rglob("*")):
        if f.is_file() and not f.is_symlink() and f not in skip:
            hits = leaks(f.read_bytes(), *found)
            if hits:
                out[str(f.relative_to(root))] = hits
    return out


# ---- real local servers ----------------------------------------------------------------------

class Server:
    """A chat-completions server on 127.0.0.1 recording every request (method, path, headers,
    body). ``routes``: path prefix -> (status, Location) to redirect; anything else answers."""

    def __init__(self, reply: str = "Roma."):
        outer = self
        self.requests, self.routes, self.reply = [], {}, reply

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                outer.requests.append({"method": self.command, "path": self.path, "body": body,
                                       "auth": self.headers.get("Authorization"),
                                       "headers": dict(self.headers)})
                for prefix, (status, location) in outer.routes.items():
                    if self.path.startswith(prefix):
                        self.send_response(status)
                        self.send_header("Location", location)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                data = json.dumps({"choices": [{"message": {"content": outer.reply},
                                                "finish_reason": "stop"}],
                                   "usage": {"completion_tokens": 3}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_HEAD = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers():
    """(origin on 127.0.0.1, other: the same machine reached as ``localhost``, another port —
    another host string, so another host for the client)."""
    a, b = Server(), Server()
    a.routes = {"/x302": (302, f"http://localhost:{b.port}/v1/chat/completions"),
                "/x307": (307, f"http://localhost:{b.port}/v1/chat/completions"),
                "/x308": (308, f"http://localhost:{b.port}/v1/chat/completions"),
                "/same302": (302, "/ok/v1/chat/completions"),
                "/same303": (303, "/ok/v1/chat/completions"),
                "/same307": (307, f"{a.url}/ok/v1/chat/completions"),
                "/same308": (308, "/ok/v1/chat/completions")}
    yield a, b
    a.close()
    b.close()


def test_the_servers_would_see_a_leak(servers, monkeypatch):
    """The control: urllib's own redirect handling (the client before this fix) sends the
    Authorization header cross-host and turns the POST into a GET; the servers see both."""
    a, b = servers
    key = planted("sk-control-")
    req = urllib.request.Request(f"{a.url}/x302/v1/chat/completions", data=b"{}", method="POST",
                                 headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        r.read()
    assert [(x["method"], x["auth"]) for x in b.requests] == [("GET", f"Bearer {key}")]


@pytest.mark.parametrize("code", [302, 307, 308])
def test_a_cross_host_redirect_is_refused_and_gets_nothing(servers, monkeypatch, code):
    a, b = servers
    key, qs = planted("sk-env-"), planted("qs-")
    monkeypatch.setenv(VAR, key)
    with pytest.raises(EndpointError) as e:
        endpoint.chat(f"{a.url}/x{code}/v1?api_key={qs}", "m", MSGS, max_tokens=4, timeout=5,
                      retries=2, backoff=0.01, api_key_env=VAR)
    msg = str(e.value)
    assert b.requests == [], "the other host got a request"
    assert f"localhost:{b.port}" in msg and f"HTTP {code}" in msg and "another host" in msg
    assert not leaks(msg, key, qs) and "api_key=***" in msg
    assert e.value.__cause__ is None and e.value.__suppress_context__
    # the configured host got one POST (no retry of a refusal), with the key and the query
    assert [(x["method"], x["auth"]) for x in a.requests] == [("POST", f"Bearer {key}")]
    assert a.requests[0]["path"] == f"/x{code}/v1/chat/completions?api_key={qs}"


@pytest.mark.parametrize("code", [307, 308])
def test_a_same_host_307_308_keeps_the_post_its_body_and_key(servers, monkeypatch, code):
    a, b = servers
    key = planted("sk-env-")
    monkeypatch.setenv(VAR, key)
    out = endpoint.chat(f"{a.url}/same{code}", "m", MSGS, max_tokens=4, timeout=5, seed=1,
                        api_key_env=VAR)
    assert out["text"] == "Roma."
    first, second = a.requests
    assert first["path"] == f"/same{code}/v1/chat/completions"
    assert second["path"] == "/ok/v1/chat/completions"
    assert second["method"] == "POST" and second["auth"] == f"Bearer {key}"
    assert second["body"] == first["body"] and json.loads(second["body"])["seed"] == 1
    assert second["headers"]["Content-Type"] == "application/json"
    assert b.requests == [] and not leaks(json.dumps(out), key)


@pytest.mark.parametrize("code", [302, 303])
def test_a_post_is_never_turned_into_a_get(servers, monkeypatch, code):
    a, b = servers
    key = planted("sk-env-")
    monkeypatch.setenv(VAR, key)
    with pytest.raises(EndpointError) as e:
        endpoint.chat(f"{a.url}/same{code}", "m", MSGS, max_tokens=4, timeout=5,
                      api_key_env=VAR)
    msg = str(e.value)
    assert "GET" in msg and f"HTTP {code}" in msg and not leaks(msg, key)
    assert [x["method"] for x in a.requests] == ["POST"] and b.requests == []


def test_url_credentials_are_never_sent_nor_shown(servers, monkeypatch):
    a, b = servers
    user, pw, qs, key = planted("user"), planted("pw-"), planted("qs-"), planted("sk-env-")
    monkeypatch.setenv(VAR, key)
    url = f"http://{user}:{pw}@127.0.0.1:{a.port}/v1?token={qs}"
    with pytest.raises(EndpointError) as e:
        endpoint.chat(url, "m", MSGS, max_tokens=4, timeout=5, api_key_env=VAR)
    assert "credentials" in str(e.value) and not leaks(str(e.value), user, pw, qs, key)
    assert a.requests == []
    # errors of a URL with a query (refused connection, HTTP error, not JSON) hide its values
    a.routes = {"/v1/chat/completions": (404, "/nowhere")}
    with pytest.raises(EndpointError) as e:
        endpoint.chat(f"{a.url}/?token={qs}&api_key={key}", "m", MSGS, max_tokens=4, timeout=5,
                      retries=0)
    assert "HTTP 404" in str(e.value) and not leaks(str(e.value), qs, key)
    b.close()  # a refused connection
    with pytest.raises(EndpointError) as e:
        endpoint.chat(f"http://127.0.0.1:{b.port}/?sig={qs}", "m", MSGS, max_tokens=4,
                      timeout=2, retries=0)
    assert "sig=***" in str(e.value) and not leaks(str(e.value), qs)


def test_redact_url():
    assert redact_url("https://u:p@h.example:8443/v1?api_key=K&x=1#t=F") == \
        "https://h.example:8443/v1?api_key=***&x=***#***"
    assert redact_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
    assert redact_url("u:p@h:1/v1") == "h:1/v1"
    assert redact_url("http://h:notaport/") == "<a malformed URL (not shown)>"
    assert endpoint.redact_urls("at http://u:p@h/?k=v, then") == "at http://h/?k=***, then"


def test_api_key_env_must_be_a_name(monkeypatch):
    pasted = planted("sk-proj-")
    with pytest.raises(EndpointError) as e:
        endpoint.chat("http://127.0.0.1:9", "m", MSGS, max_tokens=4, api_key_env=pasted)
    assert "not the name" in str(e.value) and not leaks(str(e.value), pasted)
    assert schema.looks_like_key(pasted) and schema.looks_like_key("hf_" + secrets.token_hex(16))
    assert schema.looks_like_key("A" * 65) and schema.looks_like_key("OPENAI-API-KEY")
    for name in ("OPENAI_API_KEY", "HF_TOKEN", "ZFLOW_TEST_KEY", "my_key", "VLLM_KEY_2"):
        assert not schema.looks_like_key(name)


def test_secret_names():
    for n in ("api_key", "apiKey", "token", "hf_token", "access_token", "secret", "password",
              "passwd", "auth", "Authorization", "credentials", "client_secret", "api_key_env"):
        assert schema.secret_name(n), n
    for n in ("tokenizer", "tokenizers", "max_tokens", "max_new_tokens", "source_tokens",
              "text_key", "num_key_value_heads", "eos_token", "pad_token_id", "author", "url"):
        assert not schema.secret_name(n), n


# ---- the config check ------------------------------------------------------------------------

def endpoint_config(models: list, judge=None, base=None) -> dict:
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text()) if base is None \
        else copy.deepcopy(base)
    cfg["qualitative"] = {"suites": {"it": "config/qualitative/it.yaml"}, "models": models,
                          "judge": judge, "sheet": None, "decoding": {"max_new_tokens": 4}}
    return cfg


def config_error(cfg) -> str:
    with pytest.raises(ConfigError) as e:
        Plan(cfg, base=REPO, check_files=False)
    return str(e.value)


@pytest.fixture(scope="module")
def bad():
    """Configs with planted secrets: schema errors (a pasted sk- key, api_key/token fields) and
    the config check's (a key that matches a name's pattern, URL userinfo and query)."""
    s = {k: planted(k + "-") for k in ("pasted", "field", "judgefield", "judgepasted", "hf",
                                       "user", "pw", "query", "fragment", "nested")}
    s["hf"] = "hf_" + secrets.token_hex(17)  # matches the name pattern: only the check sees it
    url = "http://127.0.0.1:9"
    schema_bad = endpoint_config(
        [{"name": "ep1", "url": url, "model": "m", "api_key_env": s["pasted"]},
         {"name": "ep2", "url": url, "model": "m", "api_key": s["field"]},
         {"name": "ep3", "url": url, "model": "m", "auth": {"bearer": s["nested"]}}],
        judge={"model": "j", "url": url, "api_key_env": s["judgepasted"],
               "token": s["judgefield"]})
    check_bad = endpoint_config(
        [{"name": "ep1", "url": url, "model": "m", "api_key_env": s["hf"]},
         {"name": "ep2", "url": f"http://{s['user']}:{s['pw']}@127.0.0.1:9/v1", "model": "m"},
         {"name": "ep3", "url": f"http://127.0.0.1:9/v1?api_key={s['query']}", "model": "m"}],
        judge={"model": "j", "url": f"http://127.0.0.1:9/#{s['fragment']}"})
    return s, schema_bad, check_bad


def test_schema_errors_never_show_a_secret(bad):
    s, schema_bad, _ = bad
    msg = config_error(schema_bad)
    assert not leaks(msg, *s.values()), msg
    lines = msg.splitlines()
    for key, what in [("qualitative.models.0", "at api_key_env: does not match the pattern"),
                      ("qualitative.models.1", "unknown key 'api_key'"),
                      ("qualitative.models.2", "unknown key 'auth'"),
                      ("qualitative.judge", "unknown key 'token'"),
                      ("qualitative.judge.api_key_env", "does not match the pattern")]:
        line = next(x for x in lines if f"config key {key}:" in x)
        assert "the value is not shown" in line and what in line, line
    assert "the NAME of the environment variable" in msg


def test_config_check_refuses_keys_in_api_key_env_and_urls(bad):
    s, _, check_bad = bad
    msg = config_error(check_bad)
    assert not leaks(msg, *s.values()), msg
    for key, what in [("qualitative.models[0].api_key_env", "looks like a key"),
                      ("qualitative.models[1].url", "credentials"),
                      ("qualitative.models[2].url", "query"),
                      ("qualitative.judge.url", "query or fragment")]:
        assert any(x.strip().startswith(f"- {key}:") and what in x for x in msg.splitlines()), \
            (key, msg)


def test_a_valid_endpoint_config_writes_no_key(tmp_path, monkeypatch):
    """(a): the key lives in the variable api_key_env names; the specs hold only the name."""
    key = planted("sk-env-")
    monkeypatch.setenv(VAR, key)
    cfg = endpoint_config([{"name": "ep", "url": "http://127.0.0.1:9", "model": "m",
                            "api_key_env": VAR}],
                          judge={"model": "j", "url": "http://127.0.0.1:9", "api_key_env": VAR})
    plan = Plan(cfg, base=tmp_path, check_files=False)
    spec = plan.spec_file("qualitative_answer", model="ep", suite="it")
    plan.spec_file("qualitative_score", model="ep", suite="it")
    assert json.loads((tmp_path / spec).read_text())["source"]["api_key_env"] == VAR
    assert files_holding(tmp_path, [key]) == {}


def test_through_snakemake_no_secret_in_its_output_nor_files(tmp_path, bad):
    s, schema_bad, check_bad = bad
    wd = copy_workflow(tmp_path / "wf")
    base = load_config(wd)
    for cfg in (schema_bad, check_bad):
        c = copy.deepcopy(base)
        c["qualitative"] = cfg["qualitative"]
        out = dry_run_error(wd, c)
        assert "qualitative." in out and "not shown" in out
        assert not leaks(out, *s.values()), out
    # the config file holds them (the user wrote them there); nothing else does (.snakemake/)
    assert files_holding(wd, s.values(), skip={wd / "config" / "config.yaml"}) == {}


# ---- real qualitative jobs -------------------------------------------------------------------

def test_real_endpoint_jobs_write_no_key(tmp_path):
    """An endpoint model answers and an endpoint judge scores, through Snakemake, with the key
    in the variable api_key_env names: the server gets it, no file under the folder holds it."""
    server = Server(reply="SCORE: 4")
    try:
        key = planted("sk-env-")
        wd = copy_workflow(tmp_path / "wf")
        cfg = load_config(wd)
        suite = wd / "config" / "qualitative" / "secrets.yaml"
        suite.write_text(yaml.safe_dump({"language": "it", "tasks": [
            {"id": "poem", "category": "writing", "language": "it",
             "turns": ["Scrivi due righe sul mare."], "rubric": ["due righe sul mare"]}]}))
        ep = {"url": server.url, "model": "served", "api_key_env": VAR}
        cfg["qualitative"] = {"suites": {"it": "config/qualitative/secrets.yaml"},
                              "models": [{"name": "ep", **ep}], "judge": {**ep, "retries": 0},
                              "sheet": None, "decoding": {"max_new_tokens": 4}}
        write_config(wd, cfg)
        start = time.monotonic()
        p = snakemake(wd, "results/qualitative/ep/it.scores.jsonl", timeout=300,
                      extra_env={VAR: key})
        took = time.monotonic() - start
    finally:
        server.close()
    recs = [json.loads(x) for x in (wd / "results/qualitative/ep/it.scores.jsonl").read_text()
            .splitlines()]
    assert recs and recs[0]["judge_score"] == 4
    assert {x["auth"] for x in server.requests} == {f"Bearer {key}"} and len(server.requests) == 2
    assert not leaks(p.stdout + p.stderr, key)
    written = [f.relative_to(wd).parts for f in wd.rglob("*") if f.is_file()]
    assert any(p[:3] == (".snakemake", "zflow", "specs") for p in written)  # the jobs' specs
    assert any(p[:2] == ("results", "logs") for p in written)  # the jobs' logs
    assert files_holding(wd, [key]) == {}
    print(f"snakemake answer + score: {took:.1f} s")
