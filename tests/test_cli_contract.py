"""The command line keeps its word: exit codes (docs/errors.md), help text and defaults for every option, every
option exercised by a test, choices read from the library, a library that does not print."""

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import zslkit.errors as errors_module
from zslkit.checkpointing import TrainingInterrupted
from zslkit.cli import EXIT_CODES, absent, build_parser, exit_code, main
from zslkit.errors import (ConfigError, DataError, MissingDependencyError, NotFittedError, RunDirError,
                           TrainingDivergedError, ZslkitError)
from zslkit.sweep import SweepError

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def walk(parser, path=("zslkit",)):
    """(command path, parser) for the root and every sub-command, nested ones included."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, path + (name,))


def options(parser):
    return [a for a in parser._actions if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]


COMMANDS = list(walk(build_parser()))


# ----- exit codes ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("exc,code", [
    (DataError("f.mat", "features", "NaN"), 1),
    (TrainingDivergedError("cvc-zsl diverged"), 1),
    (MissingDependencyError("needs the optional package 'x'"), 1),
    (NotFittedError("not fitted"), 1),
    (SweepError("Ray missing"), 1),
    (ZslkitError("something else"), 1),
    (OSError(28, "No space left on device"), 1),
    (RuntimeError("a bug"), 1),
    (ConfigError("unknown method"), 2),
    (RunDirError("holds a finished run"), 2),
    (TrainingInterrupted("interrupted after epoch 3"), 130),
    (KeyboardInterrupt(), 130),
])
def test_each_exception_class_gets_its_exit_code_and_one_line(monkeypatch, capsys, exc, code):
    def fail(args):
        raise exc

    monkeypatch.setattr("zslkit.cli.methods_cmd.run", fail)
    monkeypatch.delenv("ZSLKIT_TRACEBACK", raising=False)
    assert exit_code(exc) == code
    capsys.readouterr()
    assert main(["methods"]) == code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("zslkit: interrupted" if code == 130 else "zslkit: error: ")
    if type(exc) is RuntimeError:  # not ours: a bug, said so, with how to see the traceback
        assert "internal error" in lines[0] and "RuntimeError: a bug" in lines[0] and "ZSLKIT_TRACEBACK" in lines[0]


def test_traceback_on_request(monkeypatch):
    def fail(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr("zslkit.cli.methods_cmd.run", fail)
    monkeypatch.setenv("ZSLKIT_TRACEBACK", "1")
    with pytest.raises(RuntimeError, match="a bug"):
        main(["methods"])


def test_every_error_class_has_a_code_and_a_documented_row():
    doc = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    section = doc.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    classes = [c for c in vars(errors_module).values()
               if isinstance(c, type) and issubclass(c, ZslkitError)] + [SweepError, TrainingInterrupted]
    for cls in classes:
        assert cls in EXIT_CODES, f"{cls.__name__} has no row in zslkit.cli.EXIT_CODES"
        assert f"`{cls.__name__}`" in section, f"docs/errors.md 'Exit codes' does not explain {cls.__name__}"
    # MissingDependencyError is a ConfigError but an environment problem: its own row wins
    assert issubclass(MissingDependencyError, ConfigError) and exit_code(MissingDependencyError("x")) == 1


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:  # argparse: unknown option
        main(["train", "--no-such-option"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:  # argparse: a choice that is not offered
        main(["train", "--setting", "semi-supervised"])
    assert e.value.code == 2
    assert main([]) == 2  # no command: the help, and a usage error
    assert main(["methods", "cvc-zls"]) == 2  # an unknown name
    assert "Did you mean: cvc-zsl?" in capsys.readouterr().err


def test_success_exits_0_and_version(capsys):
    assert main(["methods"]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("zslkit ")


def test_exit_codes_through_the_shell(tmp_path):
    """The codes as a shell sees them: a bad data file is 1, a bad option value 2."""
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    res = subprocess.run([sys.executable, "-m", "zslkit", "data", "info", str(bad)], capture_output=True, text=True,
                         env=env, timeout=300)
    assert res.returncode == 1 and "bad.npz" in res.stdout and "Traceback" not in res.stderr
    res = subprocess.run([sys.executable, "-m", "zslkit", "train", "--method", "eszsl", "--dataset", "synthetic-tiny",
                          "--set", "no_such_field=1", "--out", str(tmp_path / "r"), "--no-progress"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 2 and "no_such_field" in res.stderr and "Traceback" not in res.stderr


def test_a_reader_that_stops_reading_is_not_an_error(monkeypatch, capfd):
    """`zslkit methods | head -1`: writing to the closed pipe ends the command quietly (exit 0, nothing on
    stderr), with stdout pointed at the null device so that Python's exit-time flush does not fail again."""
    import zslkit.cli as cli

    def closed_pipe(args):
        raise BrokenPipeError(32, "Broken pipe")

    redirected = []
    monkeypatch.setattr(cli.os, "dup2", lambda fd, target: redirected.append(target))
    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["methods"].set_defaults(func=closed_pipe)
    assert cli.main(["methods"]) == 0
    assert redirected and "Broken pipe" not in capfd.readouterr().err


# ----- help ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path,parser", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_option_has_help_and_shows_its_default(path, parser):
    for action in options(parser):
        name = "/".join(action.option_strings) or action.dest
        assert action.help and action.help.strip(), f"{' '.join(path)} {name} has no help text"
        text = parser._get_formatter()._expand_help(action)
        if action.option_strings and not absent(action.default):  # 0 is shown (0 == False, but not absent)
            assert "default" in text.lower(), f"{' '.join(path)} {name}: --help does not show its default"


def test_defaults_that_are_zero_are_shown(capsys):
    assert absent(None) and absent(False) and absent([]) and not absent(0) and not absent(0.0) and not absent("x")
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "training seed (weights, episodes, noise) (default: 0)" in text


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=[" ".join(p) for p, _ in COMMANDS])
def test_help_of_every_command_exits_0(path, capsys):
    with pytest.raises(SystemExit) as e:
        main([*path[1:], "--help"])
    assert e.value.code == 0 and "usage: " in capsys.readouterr().out


# Options no test passes on purpose, each with the reason (keep this list short):
NOT_EXERCISED = {
    ("zslkit", "--version"): "exercised above through main(['--version']); the grep below cannot tell",
}


def test_every_option_is_exercised_by_a_test():
    """Every option ``--help`` shows appears, quoted, in a test file that also names its command."""
    sources = {p: p.read_text(encoding="utf-8") for p in TESTS.glob("test_*.py")}
    missing = []
    for path, parser in COMMANDS:
        command = path[-1]
        for action in options(parser):
            for opt in (o for o in action.option_strings if o.startswith("--")):
                if (path[0], opt) in NOT_EXERCISED or (command, opt) in NOT_EXERCISED:
                    continue
                quoted = re.compile(r"[\"']" + re.escape(opt) + r"(=[^\"']*)?[\"']")
                if not any(quoted.search(text) and (len(path) == 1 or f'"{command}"' in text)
                           for text in sources.values()):
                    missing.append(f"{' '.join(path)} {opt}")
    assert not missing, "options no test passes: " + ", ".join(missing)


# ----- choices come from the library ---------------------------------------------------------------------------

def _action(path, dest):
    parser = dict(COMMANDS)[path]
    return next(a for a in parser._actions if a.dest == dest)


def test_cli_choices_are_the_library_lists():
    from zslkit.data.layouts import LAYOUTS
    from zslkit.features.sources import INTERPOLATIONS
    from zslkit.pipeline import CRITERIA, SETTINGS
    from zslkit.protocol.selection import SELECTION_MODES
    from zslkit.reproduce import papers
    from zslkit.tracking import TRACKERS

    train = ("zslkit", "train")
    assert tuple(_action(train, "setting").choices) == tuple(SETTINGS)
    assert tuple(_action(("zslkit", "sweep"), "setting").choices) == tuple(SETTINGS)
    assert tuple(_action(train, "criterion").choices) == tuple(CRITERIA)
    assert tuple(_action(train, "selection").choices) == tuple(SELECTION_MODES)
    assert tuple(_action(train, "log_to").choices) == tuple(TRACKERS)
    assert tuple(_action(("zslkit", "reproduce"), "paper").choices) == tuple(papers())
    assert tuple(_action(("zslkit", "data", "convert"), "to").choices) == tuple(LAYOUTS)
    assert tuple(_action(("zslkit", "data", "build"), "to").choices) == tuple(LAYOUTS)
    assert tuple(_action(("zslkit", "features", "extract"), "interpolation").choices) == tuple(INTERPOLATIONS)


# literal choice lists the CLI keeps, each with the reason
LITERAL_CHOICES = {"--mat-version": "the MAT-file versions zslkit.data.matio writes; matio has no list of them"}


def test_no_literal_choice_lists_in_the_cli():
    for path in (ROOT / "src" / "zslkit" / "cli").glob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if re.search(r"choices=[\[(]", line):
                assert any(opt in line for opt in LITERAL_CHOICES), f"{path.name}: literal choices: {line.strip()}"


# ----- the library does not print or change logging levels -----------------------------------------------------

# the application code that may: the CLI, and the sweep worker process it starts (its log.txt, as train's)
MAY_CONFIGURE = {"sweep/trial.py": "setLevel"}


def test_library_does_not_print_or_set_logging_levels():
    src = ROOT / "src" / "zslkit"
    offenders = []
    for path in src.rglob("*.py"):
        rel = path.relative_to(src).as_posix()
        if rel.startswith("cli/"):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            for word in ("print", "setLevel", "basicConfig"):
                if re.search(rf"(?<![\w.]){word}\(|\.{word}\(", code) and MAY_CONFIGURE.get(rel) != word:
                    offenders.append(f"{rel}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
