"""The one command-line style of every cpvt_lab command: ``KEY=VALUE`` words, ``--help``, and a bad
word answered by one line on stderr and exit status 2, before any work starts.

A command names its own options with their defaults; every other ``KEY=VALUE`` word is a run-config
override passed on to Hydra (``python -m cpvt_lab.run``'s grammar), checked as Hydra reads it. Values of
the command's own options are read as YAML, so ``steps=200``, ``seeds=[0,1]``, ``dry_run=true`` and
``tables_dir=outputs/x`` all work. The folders have one name in every command: ``results_dir`` (the rows),
``tables_dir`` (the tables and figures made from them); ``output_dir`` is the run config's (run folders).
A list of names is ``ablations=[a,b]`` everywhere. The old names ``results``, ``out``, ``out_dir`` and
``ablation`` are read as those (``ALIASES``).
"""
from __future__ import annotations

import sys
from typing import Any, Callable, Collection, Mapping, Optional, Sequence

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException

# old name -> the one name, where a command has that option
ALIASES = {"results": "results_dir", "out": "tables_dir", "out_dir": "tables_dir", "ablation": "ablations"}


class UsageError(ValueError):
    """A command-line word that cannot work; the message names the key and what is allowed."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"{key}: {problem}")
        self.key = key


def check_override(word: str) -> str:
    """A run-config override as Hydra would read it, or a ``UsageError`` naming the word."""
    try:
        OverridesParser.create().parse_overrides([word])
    except OverrideParseException as err:
        reason = " ".join(str(err).splitlines()[1:2])
        raise UsageError(word, f"not a KEY=VALUE override ({reason}; see --help)") from None
    return word


def parse_words(argv: Sequence[str], options: Mapping[str, Any], aliases: Optional[Mapping[str, str]] = None,
                flags: Collection[str] = ()) -> tuple[dict[str, Any], list[str]]:
    """(this command's options, typed like their defaults; the run-config overrides, in order). ``aliases``: old
    names of options (besides ``ALIASES``); ``flags``: the words starting with ``-`` the command passes on (Hydra's,
    for ``run``), each with its value where one follows without ``=``."""
    values, overrides = dict(options), []
    aliases = {**ALIASES, **(aliases or {})}
    for i, word in enumerate(argv):
        if word.startswith("-"):
            if word.split("=", 1)[0] not in flags:
                raise UsageError(word, "not a flag of this command; words are KEY=VALUE (see --help)")
            overrides.append(word)
            continue
        key, sep, text = word.partition("=")
        if i and argv[i - 1].split("=", 1)[0] in flags and not sep:  # a flag's value: --cfg job
            overrides.append(word)
            continue
        if (not sep and not word.startswith("~")) or not key:
            raise UsageError(word, "expected KEY=VALUE (see --help)")
        if key not in options and aliases.get(key) in options:
            key = aliases[key]
        if key not in options:
            overrides.append(check_override(word))
            continue
        values[key] = _typed(key, text, options[key])
    return values, overrides


def _typed(key: str, text: str, default: Any) -> Any:
    """An option's value read as YAML and checked against the type of its default."""
    try:
        value = yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        raise UsageError(key, f"cannot read {text!r}") from None
    if isinstance(default, bool) and not isinstance(value, bool):
        raise UsageError(key, f"must be true or false, got {text!r}")
    if isinstance(default, int) and not isinstance(default, bool) and (
            not isinstance(value, int) or isinstance(value, bool)):
        raise UsageError(key, f"must be an integer, got {text!r}")
    if isinstance(default, float):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise UsageError(key, f"must be a number, got {text!r}")
        value = float(value)
    if isinstance(default, str) and value is not None:
        value = text  # a path or a name: as typed
    return value


def names_option(value: Any, key: str) -> list[str]:
    """A list of names as one option gives it: ``[a,b]``, one name, or (the old spelling) ``a,b``."""
    if isinstance(value, str):
        value = [v for v in value.split(",") if v]
    if not (isinstance(value, list) and value and all(isinstance(v, str) and v for v in value)):
        raise UsageError(key, f"must be a non-empty list like {key}=[peg,none], got {value!r}")
    return value


def name_first(argv: Sequence[str], what: str, names: Sequence[str]) -> tuple[str, list[str]]:
    """(the first word, which names a ``what`` instead of being KEY=VALUE; the other words)."""
    if not argv or "=" in argv[0] or argv[0].startswith("-"):
        raise UsageError(what, f"name one as the first word, before any KEY=VALUE; valid: {', '.join(names)}")
    return argv[0], list(argv[1:])


def run_command(main: Callable[[list[str]], Optional[int]], doc: str, argv: Optional[Sequence[str]] = None,
                errors: tuple[type[BaseException], ...] = ()) -> int:
    """``--help``/``-h`` prints ``doc``; ``UsageError`` and ``errors`` become ``error: <message>``, exit 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if {"-h", "--help"} & set(argv):
        print(doc.strip())
        return 0
    try:
        return main(argv) or 0
    except (UsageError, *errors) as err:
        said = " ".join(line.strip() for line in str(err).splitlines() if line.strip())  # one line, always
        print(f"error: {said}", file=sys.stderr)
        return 2
