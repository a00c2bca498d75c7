"""The config schema (config/schemas/config.schema.yaml): validation, and its defaults applied.

The schema is the only home of a default: ``load`` returns a copy of the config with every
default filled in, so the rest of the code indexes keys and never repeats a default value.

Secrets (docs/secrets.md): a message never shows the value at a key named like a secret
(:func:`secret_name`: key, token, secret, password, auth, credential...; also anything under
one, e.g. an entry's unknown ``api_key:``), nor an entry holding one, nor a URL's userinfo or
query values (zflow.endpoint.redact_url). Such an error names the key and what is wrong, without
the value: ``<key>: the value is not shown (it may be a secret): <what is wrong>``.
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path

import yaml

from zflow.endpoint import redact_urls
from zflow.paths import NAME

SCHEMA = Path(__file__).resolve().parents[3] / "config" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    pass


def _validator(schema: dict):
    from jsonschema import Draft202012Validator, validators

    props = Draft202012Validator.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, sch):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from props(validator, properties, instance, sch)

    return validators.extend(Draft202012Validator, {"properties": set_defaults})(schema)


def _key(error) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


# ---- secrets ---------------------------------------------------------------------------------

# words of a key name (split at _ - . and camelCase) that make it a secret's name
SECRET_WORDS = frozenset({"key", "token", "secret", "secrets", "password", "passwd", "passphrase",
                          "pwd", "auth", "authorization", "credential", "credentials", "bearer",
                          "cookie", "apikey", "apitoken", "accesskey", "privatekey"})
SECRET_PARTS = ("apikey", "apitoken", "accesstoken", "authtoken", "accesskey", "privatekey",
                "secret", "password", "passwd", "credential")
# names of this schema that hold those words but never a secret (token ids, column names...)
NOT_SECRET = frozenset({"text_key", "num_key_value_heads", "eos_token", "bos_token_id",
                        "eos_token_id", "pad_token_id", "bytes_per_token"})
# the NAME of an environment variable (api_key_env): what the schema's pattern also says
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
API_KEY_ENV_HINT = ("api_key_env is the NAME of the environment variable that holds the key, "
                    "e.g. OPENAI_API_KEY, never the key itself: export the key in that variable")
KEY_PREFIXES = ("sk-", "sk_", "hf_", "ghp_", "gho_", "ghs_", "ghu_", "github_pat_", "glpat-",
                "xoxb-", "xoxp-", "AKIA", "AIza", "pk_live", "rk_live", "eyJ")


def secret_name(name) -> bool:
    """Whether a config key named ``name`` may hold a secret (its value is never shown)."""
    if not isinstance(name, str) or name in NOT_SECRET:
        return False
    words = re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower())
    joined = "".join(words)
    return bool(SECRET_WORDS.intersection(words)) or any(p in joined for p in SECRET_PARTS)


def _key_like(v: str) -> bool:
    """A known key prefix, or long and random-looking (names are words; keys mix case and
    digits)."""
    digits = sum(c.isdigit() for c in v)
    mixed = any(c.islower() for c in v) and any(c.isupper() for c in v) and digits
    return (v.startswith(KEY_PREFIXES) and len(v) >= 10) or (
        len(v) >= 20 and bool(mixed or digits >= len(v) / 4))


def looks_like_key(value) -> bool:
    """Whether ``value``, given where an environment variable's NAME goes (api_key_env), is not
    such a name or looks like a pasted key."""
    v = str(value)
    return not ENV_NAME.fullmatch(v) or _key_like(v)


def _shown_name(name) -> str:
    """A key name for a message: itself, unless it may be a key pasted as a name."""
    n = str(name)
    ok = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,47}", n) and not _key_like(n)
    return repr(n) if ok else "(a name not shown)"


def _url_secrets(text: str) -> set[str]:
    """The userinfo and query values of the URLs in ``text``."""
    from urllib.parse import unquote, urlsplit

    out = set()
    for m in re.finditer(r"[A-Za-z][A-Za-z0-9+.-]*://\S+", text):
        try:
            parts = urlsplit(m.group(0))
            out |= {parts.username or "", parts.password or ""}
        except ValueError:
            continue
        for p in re.split(r"[&;]", parts.query):
            out |= {p.split("=", 1)[-1], unquote(p.split("=", 1)[-1])}
    return out


def secret_values(config) -> list[str]:
    """The strings of ``config`` no message may show: every value under a key named like a
    secret (at any depth) and the userinfo and query values of URLs; longest first."""
    out: set[str] = set()

    def walk(node, secret: bool):
        if isinstance(node, dict):
            for k, v in node.items():
                if secret:
                    out.add(str(k))
                walk(v, secret or secret_name(k))
        elif isinstance(node, (list, tuple)):
            for v in node:
                walk(v, secret)
        elif isinstance(node, str):
            if secret:
                out.add(node)
            out.update(_url_secrets(node))
        elif secret and node is not None and not isinstance(node, bool):
            out.add(str(node))

    walk(config, False)
    return sorted((s for s in out if len(s) >= 4), key=len, reverse=True)


def scrub(message: str, secrets) -> str:
    """``message`` with every URL redacted and every string of ``secrets`` replaced by ***."""
    message = redact_urls(message)
    for s in secrets:
        message = message.replace(s, "***")
    return message


def _holds_secret(instance) -> bool:
    """A value under (or being) a secret's name, or a URL with userinfo or a query."""
    if isinstance(instance, dict):
        return any((secret_name(k) and v not in (None, "")) or _holds_secret(v)
                   for k, v in instance.items())
    if isinstance(instance, (list, tuple)):
        return any(_holds_secret(v) for v in instance)
    return isinstance(instance, str) and redact_urls(instance) != instance


def _touches_secret(error) -> bool:
    return any(secret_name(p) for p in error.absolute_path) or _holds_secret(error.instance)


def _branch(error):
    """A oneOf/anyOf error's errors in the branch of the instance's type (an entry's object
    form, not its string form), or None when no single branch fits."""
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        return None
    branches: dict = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    fits = [errs for errs in branches.values()
            if not any(e.validator == "type" and not e.relative_path for e in errs)]
    return fits[0] if len(fits) == 1 else None


def _what(error) -> str:
    """What is wrong, without the value (``error.message`` shows it)."""
    v, val = error.validator, error.validator_value
    if v in ("oneOf", "anyOf") and error.context:
        fits = _branch(error)
        if fits is None:
            return f"matches none of the allowed forms ({v})"
        return "; ".join((f"at {'.'.join(map(str, e.relative_path))}: " if e.relative_path
                          else "") + _what(e) for e in fits)
    if v == "type":
        return f"must be of type {' or '.join(val) if isinstance(val, list) else val}"
    if v == "pattern":
        return f"does not match the pattern {val!r}"
    if v == "propertyNames":
        return "a key name is not allowed here (names must match the schema's pattern)"
    if v == "additionalProperties" and isinstance(error.instance, dict):
        props = error.schema.get("properties", {})
        extra = [k for k in error.instance if k not in props]
        shown = [_shown_name(k) for k in extra]
        return f"unknown key{'s' if len(extra) > 1 else ''} {', '.join(shown)} (not allowed here)"
    if v in ("required", "dependentRequired"):
        return error.message  # names the missing key, not a value
    if v == "enum":
        return f"is not one of {val!r}"
    if v == "const":
        return "is not the allowed value"
    if v in ("minLength", "maxLength"):
        return f"is {'shorter' if v == 'minLength' else 'longer'} than {val} characters allow"
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        op = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">",
              "exclusiveMaximum": "<"}[v]
        return f"must be {op} {val}"
    if v in ("minItems", "maxItems", "minProperties", "maxProperties"):
        return f"breaks {v} = {val}"
    return f"is not valid ({v})"


SAFE_NAME = f"^{NAME}$"  # the schema's $defs/name
NAME_RULE = ("use letters, digits, '.', '_' and '-', starting with a letter or digit (never '.' "
             "or '..'), at most 100 characters")


def error_message(error, secrets=()) -> str:
    """One schema error as ``config key <path>: <message>``, never showing a secret."""
    if _touches_secret(error) or any(s in error.message for s in secrets):
        text = (f"config key {_key(error)}: the value is not shown (it may be a secret): "
                f"{_what(error)}")
        if "api_key_env" in text:
            text += f" ({API_KEY_ENV_HINT})"
    elif _branch(error):
        text = "\n  - ".join(error_message(e, secrets) for e in _branch(error))
    elif error.schema.get("pattern") == SAFE_NAME and isinstance(error.instance, str):
        where = "a name" if list(error.absolute_path)[-1:] == ["name"] else "an entry's name"
        text = (f"config key {_key(error)}: {error.instance!r} is not allowed as {where}: it "
                f"becomes a folder and a job wildcard, so {NAME_RULE}")
    else:
        text = f"config key {_key(error)}: {error.message}"
    return scrub(text, secrets)


@functools.lru_cache(maxsize=4)
def _document(schema_path: str) -> dict:
    """The schema, parsed once per process: never changed (its defaults are deep-copied out)."""
    return yaml.safe_load(Path(schema_path).read_text())


@functools.lru_cache(maxsize=4)
def _compiled(schema_path: str):
    """The schema's validator, built once per process."""
    return _validator(_document(schema_path))


def load(config: dict, schema_path: Path = SCHEMA) -> dict:
    """A validated copy of ``config`` with the schema's defaults; ConfigError lists problems
    (never showing a secret: see the module's docstring)."""
    cfg = copy.deepcopy(dict(config))
    errors = sorted(_compiled(str(schema_path)).iter_errors(cfg),
                    key=lambda e: list(map(str, e.path)))
    if errors:
        secrets = secret_values(config)
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(
            error_message(e, secrets) for e in errors))
    return cfg


def defaults(pointer: str, schema_path: Path = SCHEMA) -> dict:
    """The defaults of one object of the schema, e.g. 'languages/*/pretrain' (tests, tools)."""
    node = _document(str(schema_path))
    for part in pointer.split("/"):
        node = node["additionalProperties"] if part == "*" else node["properties"][part]
    return {k: copy.deepcopy(v["default"]) for k, v in node.get("properties", {}).items()
            if "default" in v}
