"""The README stays true: its generated support table matches the converter registry, its
Layout names every module, and its first lines are the two set-up commands CI runs."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def _layout_block() -> str:
    text = README.read_text()
    m = re.search(r"^## Layout\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert m, "README.md has no '## Layout' section followed by another section"
    return m.group(1)


def test_support_table_is_current():
    from edgematting import docs

    text = README.read_text()
    assert docs.render(text) == text, "README.md support table is out of date: run `python -m edgematting.docs`"


def test_layout_names_every_module():
    block = _layout_block()
    missing = []
    for path in sorted((ROOT / "edgematting").iterdir()):
        if path.name.startswith("_") or path.name == "__pycache__":
            continue
        if path.suffix == ".py" or (path.is_dir() and (path / "__init__.py").is_file()):
            name = path.stem if path.suffix == ".py" else path.name + "/"
            if name not in block:
                missing.append(f"edgematting/{name}")
    for path in sorted((ROOT / "edgematting" / "bench").glob("*.py")):
        if not path.name.startswith("_") and path.stem not in block:
            missing.append(f"edgematting/bench/{path.name}")
    for path in sorted((ROOT / "converters").glob("*.py")):
        if not path.name.startswith("_") and path.stem not in block:
            missing.append(f"converters/{path.name}")
    assert not missing, f"README Layout does not mention: {missing}"


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
