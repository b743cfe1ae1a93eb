"""The README stays true: its generated support table matches the converter registry, its
generated Layout matches the source tree, it stays a short guide, its links (and those of
docs/) lead somewhere, and its first lines are the two set-up commands CI runs."""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MAX_README_LINES = 200


def test_support_table_is_current():
    from edgematting import docs

    text = README.read_text()
    assert docs.render_support_table(text) == text, \
        "README.md support table is out of date: run `python -m edgematting.docs`"


def test_layout_is_current():
    from edgematting import docs

    text = README.read_text()
    assert docs.LAYOUT_BEGIN in text and docs.LAYOUT_END in text, "README.md has no layout markers"
    assert docs.render_layout(text) == text, "README.md Layout is out of date: run `python -m edgematting.docs`"
    doc = docs.LAYOUT_DOC.read_text()
    assert docs.render_layout_doc(doc) == doc, "docs/layout.md is out of date: run `python -m edgematting.docs`"
    assert "new_module" not in doc and "\n  training/" in text and "loop.py" not in text and "loop.py" in doc


def _tree(tmp_path: Path) -> Path:
    """A miniature source tree: one package with one module, one converter module."""
    for rel, doc in {"edgematting/__init__.py": "The package.", "edgematting/a.py": "Module a.\n\nMore.",
                     "edgematting/sub/__init__.py": "A subpackage.", "edgematting/sub/b.py": "Module b,\nwrapped.",
                     "converters/__init__.py": "Converters.", "converters/c.py": "Module c."}.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'"""{doc}"""\nX = 1\n')
    return tmp_path


def test_layout_follows_the_tree(tmp_path):
    """The Layout is read from the files: packages before modules, sorted; a new module or a
    changed docstring changes the block; a module without a docstring is named in the error."""
    from edgematting import docs

    root = _tree(tmp_path)
    names = [name.strip() for name, _ in docs.layout_rows(root)]
    assert names[:4] == ["edgematting/", "sub/", "b.py", "a.py"]
    assert names[4:7] == ["converters/", "c.py"] + [next(iter(docs.OTHER_ENTRIES))]
    rows = dict((name.strip(), desc) for name, desc in docs.layout_rows(root))
    assert rows["a.py"] == "Module a." and rows["b.py"] == "Module b, ..."

    readme = f"intro\n{docs.LAYOUT_BEGIN}\n{docs.LAYOUT_END}\nafter\n"
    current = docs.render_layout(readme, root, modules=True)
    assert docs.render_layout(current, root, modules=True) == current
    short = docs.render_layout(readme, root)  # the README's form: packages only
    assert "sub/" in short and "A subpackage." in short and "a.py" not in short

    (root / "edgematting" / "new_module.py").write_text('"""A new module."""\n')
    added = docs.render_layout(current, root, modules=True)
    assert added != current and "new_module.py" in added and "A new module." in added

    (root / "edgematting" / "a.py").write_text('"""Module a, reworded."""\n')
    assert docs.render_layout(added, root, modules=True) != added

    (root / "converters" / "nodoc.py").write_text("X = 1\n")
    with pytest.raises(docs.MissingDocstrings, match="converters/nodoc.py"):
        docs.render_layout(current, root, modules=True)


def test_every_module_has_a_docstring():
    from edgematting import docs

    try:
        docs.layout_rows()
    except docs.MissingDocstrings as e:
        pytest.fail(str(e))


def test_readme_is_short():
    n = len(README.read_text().splitlines())
    assert n <= MAX_README_LINES, (
        f"README.md has {n} lines (at most {MAX_README_LINES}): it is the user guide; "
        "measurements go to docs/experiments.md, option details to docs/reference.md")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading.strip()).lower()
    text = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    seen: dict[str, int] = {}
    anchors = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M):
        slug = _slug(heading)
        anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def _links(path: Path) -> list[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)  # code blocks
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code
    return re.findall(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text)


def test_relative_links_lead_somewhere():
    files = [README, *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for path in files:
        for link in _links(path):
            if re.match(r"^[a-z][a-z0-9+.-]*:", link, re.I):  # http:, https:, mailto: ...
                continue
            target, _, anchor = link.partition("#")
            dest = (path.parent / target).resolve() if target else path
            where = f"{path.relative_to(ROOT)}: {link}"
            if not dest.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{where} (no such heading)")
    assert not broken, "broken relative links:\n" + "\n".join(broken)


def test_first_commands_are_what_ci_runs():
    """The first code block: one command that installs and runs the main job, one that runs the
    tests; `.ci/run` installs the same extras and ends with the same test command."""
    text = README.read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1).strip().splitlines()
    assert len(block) == 2, block
    setup, test = block
    assert "quickstart" in setup
    extras = re.search(r'-e "\.\[([^\]]+)\]"', setup).group(1)
    ci = (ROOT / ".ci" / "run").read_text()
    assert f'-e ".[{extras}]"' in ci
    assert ci.rstrip().splitlines()[-1].strip() == test.strip()


def test_client_table_cites_tests_that_exist():
    """Every "verified by" cell of the README's client table names a test node that pytest
    collects (slow ones included), so renaming or dropping a test breaks the table here."""
    import subprocess
    import sys

    from edgematting.docs import cited_tests

    cited = cited_tests()
    files = sorted({c.split("::")[0] for c in cited})
    assert len(cited) >= 15 and files, cited
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "", "-p", "no:xdist",
                           *[f"tests/{f}" for f in files]], cwd=ROOT, capture_output=True, text=True)
    collected = {line.strip().removeprefix("tests/") for line in proc.stdout.splitlines() if "::" in line}
    assert collected, proc.stdout[-2000:] + proc.stderr[-2000:]
    missing = sorted(cited - collected)
    assert not missing, f"the README's client table cites tests that do not exist: {missing}"
