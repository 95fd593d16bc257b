"""The SDK's API page: scripts/docs.sh builds it, and every public name has a docstring whose
cross-references resolve, so a missing or broken docstring fails the test command."""

from __future__ import annotations

import ast
import importlib
import os
import pkgutil
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pdoc.doc
import pdoc.render_helpers
import pytest

import nextbest_client

ROOT = Path(__file__).resolve().parents[2]
ADAPTERS = ROOT / "clients" / "python" / "src" / "nextbest_client" / "adapters"
# The adapters documented from this venv; CrewAI and AutoGen live in their own venvs
# (scripts/docs.sh skips them), so a reference to them cannot be linked here.
IN_THIS_VENV = ["langgraph", "langchain"]
ELSEWHERE = ("nextbest_client.adapters.crewai", "nextbest_client.adapters.autogen")
ROLE = re.compile(r"(?::py)?:(mod|func|data|const|class|meth|attr|exc|obj):`([^`]+)`")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("api")
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "docs.sh"), str(out)],
        env={**os.environ, "NEXTBEST_DOCS_PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def _section(page: str, name: str) -> str:
    """A top-level member's part of a pdoc page, up to its own members."""
    section = page.split(f'<section id="{name}">', 1)[1].split('<section id="', 1)[0]
    return section.split('class="classattr"', 1)[0]


def test_the_page_documents_the_public_classes(site: Path) -> None:
    assert (site / "index.html").is_file()
    page = (site / "nextbest_client.html").read_text()
    for name in ["NextBest", "AsyncNextBest", "Admin", "Decision", "NextBestError", "Retry"]:
        assert f'<section id="{name}">' in page, name
    for name in nextbest_client.__all__:
        assert f'<section id="{name}">' in page, name
        if isinstance(getattr(nextbest_client, name), type):
            assert '<div class="docstring">' in _section(page, name), name
    adapters = site / "nextbest_client" / "adapters"
    assert '<section id="NextBestRouter">' in (adapters / "langgraph.html").read_text()
    assert '<section id="nextbest_tools">' in (adapters / "langchain.html").read_text()


def _public(doc: pdoc.doc.Doc[Any]) -> bool:
    return not doc.name.startswith("_")


def _assigned_docstring(name: str) -> str:
    """The docstring of a re-exported type alias, from the module that assigns it (pdoc
    reads a variable's docstring from the source of the module it documents)."""
    for info in pkgutil.iter_modules(nextbest_client.__path__, "nextbest_client."):
        if info.name.endswith((".v1", ".adapters")):
            continue
        doc = pdoc.doc.Module(importlib.import_module(info.name)).get(name)
        if doc is not None and doc.docstring.strip():
            return doc.docstring
    return ""


def test_every_export_and_its_methods_have_a_docstring() -> None:
    module = pdoc.doc.Module(nextbest_client)
    missing = []
    for name in nextbest_client.__all__:
        doc = module.get(name)
        assert doc is not None, name
        docstring = doc.docstring
        if isinstance(doc, pdoc.doc.Variable):
            docstring = _assigned_docstring(name)
            assert name in module.docstring, f"{name}: not described on the package's page"
        if not docstring.strip():
            missing.append(name)
        if isinstance(doc, pdoc.doc.Class):
            missing += [
                member.qualname
                for member in doc.members.values()
                if _public(member)
                and member.taken_from[0].startswith("nextbest_client")
                and isinstance(member, pdoc.doc.Function)
                and not member.docstring.strip()
            ]
    assert not missing, f"no docstring: {missing}"


def _undocumented(tree: ast.Module) -> Iterator[str]:
    """Public functions, classes and their public methods without a docstring."""
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        if node.name.startswith("_"):
            continue
        if not ast.get_docstring(node):
            yield node.name
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if (
                    isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                    and not item.name.startswith("_")
                    and not ast.get_docstring(item)
                ):
                    yield f"{node.name}.{item.name}"


@pytest.mark.parametrize("adapter", ["langgraph", "langchain", "crewai", "autogen"])
def test_every_adapter_has_docstrings(adapter: str) -> None:
    """From the source, so that the adapters this venv cannot import are checked too."""
    tree = ast.parse((ADAPTERS / f"{adapter}.py").read_text())
    assert ast.get_docstring(tree), adapter
    missing = list(_undocumented(tree))
    assert not missing, f"{adapter}: no docstring: {missing}"


def _documented(module: pdoc.doc.Module) -> Iterator[pdoc.doc.Doc[Any]]:
    """What the module's page shows: the module, its public members, theirs."""
    yield module
    for member in module.members.values():
        if not _public(member) or member.taken_from[0].startswith("nextbest_client.v1"):
            continue
        yield member
        if isinstance(member, pdoc.doc.Class):
            yield from (m for m in member.own_members if _public(m) or m.name == "__init__")


def test_cross_references_resolve() -> None:
    """pdoc leaves a reference it cannot resolve as plain text, silently: check each one."""
    names = ["nextbest_client", "nextbest_client.adapters"]
    names += [f"nextbest_client.adapters.{a}" for a in IN_THIS_VENV]
    modules = {name: pdoc.doc.Module(importlib.import_module(name)) for name in names}
    broken = []
    for page in modules.values():
        context = {
            "module": page,
            "all_modules": modules,
            "is_public": lambda doc: "yes" if _public(doc) or doc.name == "__init__" else "",
        }
        for doc in _documented(page):
            for kind, name in ROLE.findall(doc.docstring):
                call = "()" if kind in ("meth", "func") else ""
                code = f"<code>{name}{call}</code>"
                linked = pdoc.render_helpers.linkify(
                    cast(Any, context), code, namespace=doc.qualname, shorten=False
                )
                if "<a " not in linked and not name.startswith(ELSEWHERE):
                    broken.append(f"{page.modulename}: {doc.qualname or '(module)'}: {name}")
    assert not broken, "cross-references pdoc cannot link:\n" + "\n".join(sorted(set(broken)))
