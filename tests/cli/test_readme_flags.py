"""Every ``smartsplat`` command and flag the README shows exists in that command's ``--help``."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from smartsplat_dist.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "infra" / "README.md", ROOT / "pipelines" / "README.md"]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    found = set()
    for action in parser._actions:
        found.update(action.option_strings)
    for sub in _subparsers(parser).values():
        found |= _flags(sub)
    return found


def _uses(text: str) -> list[tuple[str, str, str]]:
    """(command, flag, line) for each flag written after ``smartsplat <command>`` on one line (or table cell)."""
    uses = []
    for line in text.splitlines():
        for m in re.finditer(r"smartsplat (\w+)([^|`\n]*)", line):
            for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", m.group(2)):
                uses.append((m.group(1), flag, line.strip()))
    return uses


def test_the_extractor_finds_flags():
    assert _uses("| `smartsplat decode A B [--ids ...] [--scale S]` | x |") == [
        ("decode", "--ids", "| `smartsplat decode A B [--ids ...] [--scale S]` | x |"),
        ("decode", "--scale", "| `smartsplat decode A B [--ids ...] [--scale S]` | x |")]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_readme_flags_exist(doc):
    commands = _subparsers(build_parser())
    uses = _uses(doc.read_text(encoding="utf-8"))
    missing = [(c, f, line) for c, f, line in uses
               if c in commands and f not in _flags(commands[c]) and f != "--help"]
    unknown = sorted({c for c, _, _ in uses if c not in commands})
    assert not missing, "flags shown in the docs that --help does not know:\n" + "\n".join(map(str, missing))
    assert not unknown, f"commands shown in the docs that do not exist: {unknown}"
