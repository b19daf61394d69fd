"""The documentation: the flag reference is what the parser generates now, the README stays short, links resolve.

Fast and TensorFlow-free: the parser is the CLI's (import-light), the rest is reading Markdown.
"""

import difflib
import os
import re

import pytest

from tfx_image_finetune.cli import flag_reference
from tests.conftest import REPO

README = os.path.join(REPO, "README.md")
README_MAX_LINES = 160
PAGES = [README, os.path.join(REPO, "benchmarks", "README.md")] + sorted(
    os.path.join(REPO, "docs", name) for name in os.listdir(os.path.join(REPO, "docs")) if name.endswith(".md"))
# Flags once documented nowhere: named here so that losing one from the reference is caught by name.
ONCE_UNDOCUMENTED = ["--batch-size", "--head-learning-rate", "--finetune-learning-rate", "--pipeline-name",
                     "--schema-dir", "--training-machine-type", "--timeout", "--demo"]


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def test_the_flag_reference_is_what_the_parser_generates():
    committed = _read(flag_reference.DOC)
    expected = flag_reference.updated(committed, flag_reference.render())
    if committed != expected:
        diff = "".join(list(difflib.unified_diff(committed.splitlines(True), expected.splitlines(True),
                                                 "docs/configuration.md (committed)", "generated now", n=1))[:40])
        pytest.fail(f"docs/configuration.md's flag reference is out of date: run `{flag_reference.COMMAND}` "
                    f"(python -m tfx_image_finetune.cli.flag_reference) and commit the result.\n{diff}")


def test_every_argument_of_every_command_is_in_the_reference():
    generated = flag_reference.render()
    parser = flag_reference.build_parser()
    missing = []
    for command, _, subparser in flag_reference._subcommands(parser):
        assert f"## {command}\n" in generated
        for action in subparser._actions:
            for name in action.option_strings or [action.metavar]:
                if name not in ("-h", "--help") and f"`{name}" not in generated:
                    missing.append(f"{command} {name}")
    assert not missing, missing
    assert all(f"`{flag} " in generated or f"`{flag}`" in generated for flag in ONCE_UNDOCUMENTED)


def test_the_readme_is_short():
    lines = _read(README).count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/ (at most {README_MAX_LINES})"


def _outside_code(text):
    """The Markdown outside fenced code blocks and inline code."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def _anchors(path):
    """GitHub's anchors of a page's headings."""
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", re.sub(r"^```.*?^```", "", _read(path), flags=re.S | re.M), re.M):
        anchor = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(anchor)
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=lambda p: os.path.relpath(p, REPO))
def test_relative_links_resolve_to_files_and_headings(page):
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", _outside_code(_read(page))):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
        if not os.path.exists(resolved):
            broken.append(f"{target}: no such file")
        elif anchor and resolved.endswith(".md") and anchor not in _anchors(resolved):
            broken.append(f"{target}: no such heading")
    assert not broken, f"{os.path.relpath(page, REPO)}: {broken}"
