"""A minimal OpenAI-compatible chat client (standard library only).

``chat`` sends ``POST {url}/v1/chat/completions`` (``{url}/chat/completions`` when ``url``
already ends in ``/v1``) and returns a chat result: ``text``, ``tokens_generated``
(``usage.completion_tokens``, None when the server does not say), ``latency_s`` (the successful
attempt), ``finish_reason`` and ``truncated`` (finish_reason ``length``). Reasoning that a server
returns apart (``reasoning_content`` / ``reasoning``) is put back in front of the text inside
``<think>…</think>``, so the record keeps it and :func:`zflow.qualitative.visible_text` cuts it.

Connection errors, timeouts, HTTP 429 and 5xx are retried ``retries`` times with exponential
backoff; other HTTP errors fail at once. The API key is read only from the environment variable
named by ``api_key_env`` and is never put in a result or an error message.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
import urllib.error
import urllib.request

__all__ = ["EndpointError", "chat", "completions_url"]


class EndpointError(RuntimeError):
    pass


def completions_url(url: str) -> str:
    base = url.rstrip("/")
    return base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")


def _api_key(api_key_env: str | None) -> str | None:
    if not api_key_env:
        return None
    key = os.environ.get(api_key_env)
    if not key:
        raise EndpointError(f"the environment variable {api_key_env} (the API key) is not set")
    return key


def _scrub(message: str, key: str | None) -> str:
    return message.replace(key, "***") if key else message


def _post(url: str, body: bytes, key: str | None, timeout: float) -> dict:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
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
    key = _api_key(api_key_env)
    target = completions_url(url)
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
        except (OSError, http.client.HTTPException) as e:
            if not _retryable(e) or attempt == retries:
                raise EndpointError(f"{target}: {_scrub(_describe(e), key)} (attempt "
                                    f"{attempt + 1} of {retries + 1})") from None
            time.sleep(backoff * 2 ** attempt)
            attempt += 1
            continue
        except ValueError:
            raise EndpointError(f"{target}: the reply is not JSON") from None
        return _result(reply, time.monotonic() - start)
