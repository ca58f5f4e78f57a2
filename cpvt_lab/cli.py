"""The one command-line style of every cpvt_lab command: ``KEY=VALUE`` words, ``--help``, and a bad
word answered by one line on stderr and exit status 2, before any work starts.

A command names its own options with their defaults; every other ``KEY=VALUE`` word is a run-config
override passed on to Hydra (``python -m cpvt_lab.run``'s grammar). Values of the command's own options
are read as YAML, so ``steps=200``, ``seeds=[0,1]``, ``dry_run=true`` and ``out=results/x`` all work.
"""
from __future__ import annotations

import sys
from typing import Any, Callable, Mapping, Optional, Sequence

import yaml


class UsageError(ValueError):
    """A command-line word that cannot work; the message names the key and what is allowed."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"{key}: {problem}")
        self.key = key


def parse_words(argv: Sequence[str], options: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(this command's options, typed like their defaults; the run-config overrides, in order)."""
    values, overrides = dict(options), []
    for word in argv:
        key, sep, text = word.partition("=")
        if not sep or not key:
            raise UsageError(word, "expected KEY=VALUE (see --help)")
        if key not in options:
            overrides.append(word)
            continue
        try:
            value = yaml.safe_load(text) if text else None
        except yaml.YAMLError:
            raise UsageError(key, f"cannot read {text!r}") from None
        default = options[key]
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
        values[key] = value
    return values, overrides


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
        print(f"error: {err}", file=sys.stderr)
        return 2
