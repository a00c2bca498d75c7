"""The config schema (config/schemas/config.schema.yaml): validation, and its defaults applied.

The schema is the only home of a default: ``load`` returns a copy of the config with every
default filled in, so the rest of the code indexes keys and never repeats a default value.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

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


def load(config: dict, schema_path: Path = SCHEMA) -> dict:
    """A validated copy of ``config`` with the schema's defaults; ConfigError lists problems."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    cfg = copy.deepcopy(dict(config))
    errors = sorted(_validator(schema).iter_errors(cfg), key=lambda e: list(map(str, e.path)))
    if errors:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(
            f"config key {_key(e)}: {e.message}" for e in errors))
    return cfg


def defaults(pointer: str, schema_path: Path = SCHEMA) -> dict:
    """The defaults of one object of the schema, e.g. 'languages/*/pretrain' (tests, tools)."""
    node = yaml.safe_load(Path(schema_path).read_text())
    for part in pointer.split("/"):
        node = node["additionalProperties"] if part == "*" else node["properties"][part]
    return {k: v["default"] for k, v in node.get("properties", {}).items() if "default" in v}
