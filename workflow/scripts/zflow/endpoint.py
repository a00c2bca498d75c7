"""A minimal OpenAI-compatible chat client (standard library only).

``chat`` sends ``POST {url}/v1/chat/completions`` (``{url}/chat/completions`` when ``url``
already ends in ``/v1``; a query string of ``url`` is kept after the path) and returns a chat
result: ``text``, ``tokens_generated`` (``usage.completion_tokens``, None when the server does not
say), ``latency_s`` (the successful attempt), ``finish_reason`` and ``truncated`` (finish_reason
``length``). Reasoning that a server returns apart (``reasoning_content`` / ``reasoning``) is put
back in front of the text inside ``<think>…</think>``, so the record keeps it and
:func:`zflow.qualitative.visible_text` cuts it.

Connection errors, timeouts, HTTP 429 and 5xx are retried ``retries`` times with exponential
backoff; other HTTP errors fail at once.

Secrets (docs/secrets.md). The API key is read only from the environment variable named by
``api_key_env``, sent only as ``Authorization: Bearer`` to the configured scheme, host and port,
and never put in a result or an error message. Redirects: to the same scheme/host/port, 307 and
308 are followed with the same method, body and headers; a redirect to another scheme, host or
port is refused (EndpointError naming the target's scheme, host and port only), never followed
without the key, since that would send the prompts to a host nobody configured; a 301, 302 or
303 answering the POST is refused (it would silently turn the POST into a bodiless GET). A URL
with credentials (``user:password@``) is refused: they are never sent. Every message that prints
a URL prints :func:`redact_url` of it (no userinfo, query values ``***``).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

__all__ = ["EndpointError", "chat", "completions_url", "redact_url", "redact_urls"]


class EndpointError(RuntimeError):
    pass


def redact_url(url: str) -> str:
    """``url`` fit for a message: no userinfo (``user:password@``), every query value (and a
    fragment) replaced by ``***``; parameter names, scheme, host, port and path are kept."""
    url = str(url)
    head, sep, rest = url.partition("/")
    if "@" in head and "://" not in url:  # user:password@host[/...] without a scheme
        url = head.rpartition("@")[2] + sep + rest
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "<a malformed URL (not shown)>"
    netloc = parts.netloc.rpartition("@")[2]
    query = "&".join(p.split("=", 1)[0] + "=***" if "=" in p else ("***" if p else "")
                     for p in re.split(r"[&;]", parts.query)) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query,
                       "***" if parts.fragment else ""))


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]*[^\s'\"<>`.,;:!?)\]}]")


def redact_urls(text: str) -> str:
    """``text`` with :func:`redact_url` applied to every URL in it (``scheme://…``)."""
    return _URL.sub(lambda m: redact_url(m.group(0)), str(text))


def completions_url(url: str) -> str:
    parts = urlsplit(url)
    base = parts.path.rstrip("/")
    path = base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")
    return urlunsplit(parts._replace(path=path))


def _origin(url: str) -> tuple:
    p = urlsplit(url)
    return p.scheme.lower(), (p.hostname or "").lower(), p.port or {"http": 80, "https": 443}.get(
        p.scheme.lower())


def _where(url: str) -> str:
    """scheme://host:port of ``url``: what a refused redirect names (no path, query, userinfo)."""
    scheme, host, port = _origin(url)
    return f"{scheme}://{host}:{port}"


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follow 307/308 to the same scheme, host and port (same method, body, headers); refuse the
    rest with an EndpointError (which no retry catches)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        here = redact_url(req.full_url)
        method = req.get_method()
        refuse = None
        if _origin(newurl) != _origin(req.full_url):
            refuse = (f"HTTP {code} redirects to another host, {_where(newurl)}: not followed, "
                      "so the API key and the prompts go to the configured host only; set the "
                      "endpoint's url to the server that answers")
        elif method not in ("GET", "HEAD") and code not in (307, 308):
            refuse = (f"HTTP {code} redirects the {method} to {redact_url(newurl)}, which would "
                      f"turn it into a GET without its body: not followed; set the endpoint's url "
                      "to the one it redirects to")
        if refuse:
            try:
                fp.close()
            finally:
                raise EndpointError(f"{here}: {refuse}")
        return urllib.request.Request(newurl, data=req.data, headers=dict(req.headers),
                                      origin_req_host=req.origin_req_host, unverifiable=True,
                                      method=method)


_OPENER = urllib.request.build_opener(_SameOriginRedirects)


def _api_key(api_key_env: str | None) -> str | None:
    if not api_key_env:
        return None
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", str(api_key_env)):
        raise EndpointError("api_key_env is not the name of an environment variable (the value is "
                            "not shown: it may be a pasted key); give the variable's NAME")
    key = os.environ.get(api_key_env)
    if not key:
        raise EndpointError(f"the environment variable {api_key_env} (the API key) is not set")
    return key


def _secrets(url: str, key: str | None) -> list[str]:
    """What no message may hold: the key, the URL's userinfo and query values (longest first)."""
    parts = urlsplit(url)
    out = [key or "", parts.username or "", parts.password or ""]
    out += [p.split("=", 1)[-1] for p in re.split(r"[&;]", parts.query)]
    return sorted({s for s in out if len(s) >= 3}, key=len, reverse=True)


def _scrub(message: str, secrets) -> str:
    if isinstance(secrets, str):
        secrets = [secrets]
    message = redact_urls(message)
    for s in secrets or ():
        message = message.replace(s, "***")
    return message


def _post(url: str, body: bytes, key: str | None, timeout: float) -> dict:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with _OPENER.open(request, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def _result(reply: dict, latency: float) -> dict:
    try:
        choice = reply["choices"][0]
        message = choice.get("message") or {}
    except (KeyError, IndexError, TypeError):
        raise EndpointError("the reply has no choices[0]") from None
    text = message.get("content") or ""
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if reasoning:
        text = f"<think>{reasoning}</think>{text}"
    tokens = (reply.get("usage") or {}).get("completion_tokens")
    finish = choice.get("finish_reason")
    return {"text": text, "tokens_generated": tokens, "latency_s": round(latency, 3),
            "finish_reason": finish, "truncated": finish == "length"}


def _retryable(error: Exception) -> bool:
    if isinstance(error, urllib.error.HTTPError):
        return error.code == 429 or error.code >= 500
    return isinstance(error, (urllib.error.URLError, TimeoutError, socket.timeout,
                              ConnectionError, http.client.HTTPException))


def _describe(error: Exception) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return f"{type(error.reason).__name__}: {error.reason}"
    return f"{type(error).__name__}: {error}"


def chat(url: str, model: str, messages: list[dict], max_tokens: int, temperature: float = 0.0,
         top_p: float = 1.0, seed: int | None = None, timeout: float = 120.0, retries: int = 2,
         api_key_env: str | None = None, backoff: float = 1.0, extra: dict | None = None) -> dict:
    """One chat completion; raises EndpointError once the retries are spent. ``extra``: more
    fields of the request body (a server's own, e.g. vLLM's ``repetition_penalty``)."""
    shown = redact_url(url)
    try:
        userinfo = "@" in urlsplit(url).netloc
    except ValueError:
        raise EndpointError(f"{shown}: not a URL") from None
    if userinfo:
        raise EndpointError(f"{shown}: the URL holds credentials (user:password@, not shown); "
                            "they are never sent: give the API key through api_key_env")
    key = _api_key(api_key_env)
    secrets = _secrets(url, key)
    target = completions_url(url)
    shown = redact_url(target)
    payload = {"model": model, "messages": messages, "max_tokens": max_tokens,
               "temperature": temperature, "top_p": top_p, "stream": False}
    if seed is not None:
        payload["seed"] = seed
    payload.update(extra or {})
    body = json.dumps(payload).encode("utf-8")
    attempt = 0
    while True:
        start = time.monotonic()
        try:
            reply = _post(target, body, key, timeout)
        except EndpointError as e:  # a refused redirect (its message is built redacted)
            raise EndpointError(_scrub(str(e), secrets)) from None
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise EndpointError(f"{shown}: the reply is not JSON") from None
        except (OSError, http.client.HTTPException, ValueError) as e:
            if not _retryable(e) or attempt == retries:
                raise EndpointError(f"{shown}: {_scrub(_describe(e), secrets)} (attempt "
                                    f"{attempt + 1} of {retries + 1})") from None
            time.sleep(backoff * 2 ** attempt)
            attempt += 1
            continue
        return _result(reply, time.monotonic() - start)
