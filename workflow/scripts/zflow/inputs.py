"""Reading the files a user hands the workflow, with one clean error each (before any job).

* :func:`read_text`: a text file as UTF-8 (a byte-order mark is skipped); bytes that are not
  UTF-8 give the file, the byte offset, the line and the column, never a ``UnicodeDecodeError``.
* :func:`load_yaml` / :func:`check_yaml`: a config file read strictly: a syntax error (a tab
  where YAML wants spaces included) gives the file, line and column; a key given twice in one
  mapping (which YAML loaders resolve silently, the last value winning) gives the file, both
  lines and the key's dotted path. ``<<`` merge keys may be overridden, as YAML intends.

``python -m zflow.inputs FILE...`` runs the config check on files by hand: Snakemake reads
``--configfile`` files itself before the workflow starts, and its message for a syntax error
names neither the file nor the line (docs/config-errors.md).
"""

from __future__ import annotations

import codecs
import sys
from pathlib import Path

import yaml

from zflow.schema import ConfigError

__all__ = ["InputError", "read_text", "load_yaml", "check_yaml"]


class InputError(ConfigError):
    """A file the config names (or a config file) that cannot be read as what it must be."""


def _where(data: bytes, offset: int) -> str:
    """``byte <offset> (line <l>, column <c>)`` of ``offset`` in ``data`` (1-based line and
    column, the column counted in bytes)."""
    line = data.count(b"\n", 0, offset) + 1
    col = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return f"byte {offset} (line {line}, column {col})"


def read_text(path, what: str = "text") -> str:
    """``path`` decoded as UTF-8 (a leading byte-order mark dropped). ``InputError`` names the
    file and where the first byte that is not UTF-8 sits; ``what`` says what the file should
    be (``"JSON lines"``, ...)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"'{path}': cannot be read ({e.strerror or e})") from None
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        at = bom + e.start
        bad = data[at:at + 4].hex(" ")
        raise InputError(f"'{path}': not UTF-8 {what}: at {_where(data, at)} the bytes {bad} "
                         f"are not UTF-8 ({e.reason}); save the file as UTF-8") from None


def _mark(path: Path, mark) -> str:
    return f"'{path}' line {mark.line + 1}, column {mark.column + 1}"


def _syntax(path: Path, text: str, e: yaml.YAMLError) -> InputError:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    problem = " ".join(str(x) for x in (getattr(e, "context", None), getattr(e, "problem", None))
                       if x) or str(e).splitlines()[0]
    where = _mark(path, mark) if mark is not None else f"'{path}'"
    hint = ""
    if mark is not None:
        line = text.splitlines()[mark.line] if mark.line < len(text.splitlines()) else ""
        if "\t" in line[:mark.column + 1] or "\\t" in problem:
            hint = ": a tab character; YAML indents with spaces only, replace the tab with spaces"
    return InputError(f"{where}: not valid YAML ({problem}){hint}")


def _duplicates(path: Path, node, keys: tuple = (), seen: set | None = None) -> list[str]:
    """The keys given twice in one mapping under ``node`` (merge keys ``<<`` aside)."""
    seen = set() if seen is None else seen
    if id(node) in seen:  # an alias: the anchored node was walked already
        return []
    seen.add(id(node))
    out = []
    if isinstance(node, yaml.MappingNode):
        first: dict = {}
        for k, v in node.value:
            if k.tag == "tag:yaml.org,2002:merge":
                out += _duplicates(path, v, keys, seen)
                continue
            name = k.value if isinstance(k, yaml.ScalarNode) else None
            if name is not None and name in first:
                dotted = _dotted((*keys, name))
                out.append(f"{_mark(path, k.start_mark)}: duplicate key '{dotted}' (first at line "
                           f"{first[name].start_mark.line + 1}): YAML would keep the last value "
                           "silently; remove one of them")
            elif name is not None:
                first[name] = k
            out += _duplicates(path, v, (*keys, name if name is not None else "?"), seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            out += _duplicates(path, v, (*keys, f"[{i}]"), seen)
    return out


def _dotted(keys) -> str:
    """``a.b[0].c`` from the keys ``a, b, [0], c``."""
    return "".join(k if k.startswith("[") or not i else f".{k}" for i, k in enumerate(keys))


def _compose(text: str, loader_class):
    """(node tree, data) of one YAML document; the data is built from a second composition,
    leaving the first tree as written (merge keys unmerged)."""
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    if node is None:
        return None, None
    loader = loader_class(text)
    try:
        return node, loader.get_single_data()
    finally:
        loader.dispose()


def load_yaml(path, mapping: bool = True):
    """``path`` read strictly (the module's docstring); ``mapping``: the top level must be a
    mapping of keys (a config file). Raises ``InputError`` listing every duplicate key, or the
    first syntax error."""
    path = Path(path)
    text = read_text(path, "YAML")
    try:
        node, data = _compose(text, getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        try:  # the pure-Python reader's message names what it found ('\t', the alias...)
            node, data = _compose(text, yaml.SafeLoader)
        except yaml.YAMLError as e:
            raise _syntax(path, text, e) from None
    # composed, not constructed: the constructor merges `<<` keys into the mapping nodes
    dups = _duplicates(path, node) if node is not None else []
    if dups:
        raise InputError("\n  - ".join(dups))
    if mapping and not isinstance(data, dict):
        raise InputError(f"'{path}': a config file holds a mapping of keys at the top level, not "
                         f"{type(data).__name__ if data is not None else 'nothing'}")
    return data


def check_yaml(paths) -> None:
    """Every file of ``paths`` read by :func:`load_yaml`; one ConfigError listing the problems."""
    problems = []
    for p in paths:
        try:
            load_yaml(p)
        except InputError as e:
            problems.append(str(e))
    if problems:
        raise ConfigError("invalid config file:\n  - " + "\n  - ".join(problems))


def main(argv=None) -> int:
    files = sys.argv[1:] if argv is None else argv
    if not files:
        print("usage: python -m zflow.inputs CONFIG.yaml...", file=sys.stderr)
        return 2
    try:
        check_yaml(files)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{len(files)} file(s) read: no syntax error, tab or duplicate key")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
