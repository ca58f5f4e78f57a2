"""The shared command-line style: KEY=VALUE words, --help, one line and exit 2 for a bad word."""
from __future__ import annotations

import pytest

from cpvt_lab.cli import UsageError, name_first, parse_words, run_command

OPTIONS = {"steps": 200, "out": "results/x", "dry_run": False, "seeds": None, "budget": 540.0}


def test_own_options_are_typed_like_their_defaults_and_the_rest_are_overrides():
    values, overrides = parse_words(["steps=50", "seeds=[0,1]", "model.size=vit_ti4", "dry_run=true",
                                     "out=a/b.c", "budget=300"], OPTIONS)
    assert values == {"steps": 50, "out": "a/b.c", "dry_run": True, "seeds": [0, 1], "budget": 300.0}
    assert overrides == ["model.size=vit_ti4"]


@pytest.mark.parametrize("word, key", [("steps=many", "steps"), ("dry_run=maybe", "dry_run"), ("oops", "oops"),
                                       ("steps=1.5", "steps"), ("=3", "=3"),
                                       ("budget=soon", "budget"), ("budget=true", "budget")])
def test_a_bad_word_names_its_key(word, key):
    with pytest.raises(UsageError, match=f"^{key}:"):
        parse_words([word], OPTIONS)


def test_run_command_prints_help_and_turns_errors_into_one_line(capsys):
    def main(argv):
        parse_words(argv, OPTIONS)
        raise KeyError("unreachable")

    assert run_command(main, "usage: demo", ["--help"]) == 0
    assert capsys.readouterr().out.strip() == "usage: demo"
    assert run_command(main, "usage: demo", ["steps=x"]) == 2
    assert capsys.readouterr().err == "error: steps: must be an integer, got 'x'\n"
    assert run_command(lambda argv: (_ for _ in ()).throw(FileNotFoundError("gone")), "", [],
                       errors=(FileNotFoundError,)) == 2


def test_a_command_that_takes_a_name_first_refuses_a_key_value_there():
    assert name_first(["paper", "seeds=[0]"], "grid", ["paper"]) == ("paper", ["seeds=[0]"])
    for argv in ([], ["seeds=[0]"], ["--dry-run"]):
        with pytest.raises(UsageError, match="^grid: .*valid: paper"):
            name_first(argv, "grid", ["paper"])
