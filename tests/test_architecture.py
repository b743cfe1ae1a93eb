"""The package's shape: no import cycle, declared layers, one format table, facts written once.

grimp and import-linter find a package by walking its folder, and `converters/` lives beside
`edgematting/` in the repository; so both checks run on a copy of the tree laid out as it is
installed (`converters/` as `edgematting/converters/`), in a subprocess. Imports inside
functions count as imports.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).parent / "lint-imports"

_CYCLES = textwrap.dedent("""
    import json, sys
    import grimp
    g = grimp.build_graph("edgematting")
    adj = {m: sorted(g.find_modules_directly_imported_by(m)) for m in g.modules}
    sys.setrecursionlimit(10000)
    index, low, stack, on, cycles = {}, {}, [], set(), []
    def visit(v):
        index[v] = low[v] = len(index); stack.append(v); on.add(v)
        for w in adj[v]:
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))
    for m in sorted(adj):
        if m not in index:
            visit(m)
    print(json.dumps({"modules": len(adj), "cycles": cycles}))
""")


def installed_layout(dest: Path) -> Path:
    """A copy of the package as installed: edgematting/ with converters/ inside."""
    pkg = dest / "edgematting"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "edgematting", pkg, ignore=ignore)
    shutil.copytree(ROOT / "converters", pkg / "converters", ignore=ignore)
    return dest


def cycles(tree: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", _CYCLES], cwd=tree, env={"PYTHONPATH": str(tree), "PATH": ""},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def lint(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=tree,
                          env={"PYTHONPATH": str(tree), "PATH": "", "NO_COLOR": "1"},
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    if not LINT.exists():
        pytest.fail(f"{LINT} is missing: install the dev extra (pip install -e '.[dev]'), which pins import-linter")
    return installed_layout(tmp_path_factory.mktemp("layout"))


def test_the_module_graph_has_no_cycle(tree):
    r = cycles(tree)
    assert r["modules"] > 80, r  # converters included
    assert r["cycles"] == [], r["cycles"]


def test_the_layers_contract_is_kept(tree):
    out = lint(tree)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "1 kept, 0 broken" in out.stdout


def test_a_back_edge_inside_a_function_fails_both_checks(tmp_path):
    """A lazy import from a low layer up to the CLI: a cycle, and a broken layer."""
    tree = installed_layout(tmp_path)
    with open(tree / "edgematting" / "formats.py", "a") as f:
        f.write("\n\ndef _back_edge():\n    from .converters import convert  # noqa: F401\n")
    r = cycles(tree)
    assert any("edgematting.formats" in c and "edgematting.converters" in c for c in r["cycles"]), r
    out = lint(tree)
    assert out.returncode != 0 and "BROKEN" in out.stdout, out.stdout[-2000:]
    assert "edgematting.formats -> edgematting.converters" in out.stdout


def _source(*parts: str) -> dict[Path, str]:
    files = [p for part in parts for p in sorted((ROOT / part).rglob("*.py"))]
    return {p: p.read_text() for p in files}


def test_each_target_fact_and_the_normalization_are_written_once():
    src = _source("edgematting", "converters")
    # the embedded-metadata key, as a string literal, only in the format table
    key = [p.name for p, t in src.items() if re.search(r"[\"']edgematting[\"']\]|= *[\"']edgematting[\"']$", t, re.M)
           and p.name != "formats.py"]
    assert key == [], key
    # file suffixes of the targets only in the format table
    for suffix in (".tflite", ".onnx", ".mlpackage"):
        hits = [p.relative_to(ROOT) for p, t in src.items() if re.search(rf"suffix *(=|==) *[\"']\{suffix}[\"']", t)]
        assert hits == [Path("edgematting/formats.py")], (suffix, hits)
    # the default normalization, as code, only in imageops
    norm = [p.relative_to(ROOT) for p, t in src.items()
            if any("127.5" in line and not line.lstrip().startswith(("#", "(None", "pixels")) for line in t.splitlines())]
    assert norm == [Path("edgematting/imageops.py")], norm
    # no per-target copies of the precision facts
    for name in ("CALIBRATED", "FULL_INTEGER", "IO_TYPES", "TARGET_OPTIONS", "class Target(", "META_KEY ="):
        hits = [p.relative_to(ROOT) for p, t in src.items() if name in t]
        assert hits == [], (name, hits)


# -- adding a target: one table entry, one converter module, one runner module ------------
FAKE_CONVERTER = '''
"""A fake target: the file holds the Keras model's folder and the metadata, as JSON."""
import json
from pathlib import Path

from edgematting.contract import artifact_metadata


def check_config(config):
    pass


def convert(model, spec, config, out_path):
    meta = artifact_metadata(spec, config, Path(out_path).name)
    Path(out_path).write_text(json.dumps({"keras": spec.source, "meta": meta}))
    return meta
'''

FAKE_RUNNER = '''
"""Runs a fake artifact: the Keras model it names, with normalized float input."""
import json

import numpy as np

from edgematting.runners.base import Runner


def read_embedded_metadata(path):
    return json.loads(open(path).read())["meta"]


class FakeRunner(Runner):
    def __init__(self, path, num_threads=1):
        from edgematting.modelio import load_model_dir

        self.model, _ = load_model_dir(json.loads(open(path).read())["keras"])
        self.metadata = read_embedded_metadata(path)
        self.engine = "fake"

    def run_raw(self, x):
        return np.asarray(self.model(x, training=False))
'''


def test_a_new_target_is_one_entry_one_converter_one_runner(tmp_path, monkeypatch, confident_fast_scnn_dir):
    """A fake target added the documented way is listed, validated, converted, verified
    against Keras, opened by the runtime and shown in the support table, with no other change."""
    import argparse
    import dataclasses

    from edgematting import formats, modelio, runners
    from edgematting.converters import ExportConfig, add_option_arguments, convert_model
    from edgematting.errors import UnsupportedError

    (tmp_path / "fake_converter.py").write_text(FAKE_CONVERTER)
    (tmp_path / "fake_runner.py").write_text(FAKE_RUNNER)
    monkeypatch.syspath_prepend(str(tmp_path))

    @dataclasses.dataclass
    class FakeOptions:
        level: int = formats.option(1, flag="--fake-level", kind=int, help="a fake option")

    spec = formats.FormatSpec(
        name="fake", title="Fake", suffix=".fake",
        precisions={"fp32": formats.PrecisionSpec("float32", formats.Tolerance(max_abs=1e-5, min_iou=0.999,
                                                                                reason="the Keras model itself"))},
        input_types=("float",), channels=(3,), options=FakeOptions,
        converter="fake_converter", runner="fake_runner:FakeRunner", runtime="the Keras model")
    monkeypatch.setitem(formats.FORMATS, "fake", spec)
    monkeypatch.setitem(formats.TOLERANCES, ("fake", "fp32"), spec.precisions["fp32"].tolerance)
    # the artifact records where its Keras model is (a field the fake converter reads)
    monkeypatch.setattr(modelio.ModelSpec, "source", str(confident_fast_scnn_dir), raising=False)

    assert "| fake | `.fake` | the Keras model |" in formats.support_table_markdown()
    with pytest.raises(UnsupportedError, match="fake"):
        ExportConfig(target="fake", precision="int8")
    parser = argparse.ArgumentParser()
    add_option_arguments(parser)
    assert "--fake-level" in parser.format_help()

    art = convert_model(confident_fast_scnn_dir, ExportConfig(target="fake", target_options={"fake": {"level": 2}}),
                        out_dir=tmp_path / "out", progress=False)
    assert art.path.name == "fast-scnn_fp32.fake" and art.verification.passed
    assert art.metadata["conversion"]["options"]["fake"] == {"level": 2}
    assert formats.target_of(art.path) == "fake"
    model = runners.open(art.path)
    assert model.kind == "fake" and model.engine == "fake"
    rgb = np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    ref = runners.open(confident_fast_scnn_dir).predict_photo(rgb)
    np.testing.assert_allclose(model.predict_photo(rgb), ref, atol=1e-5)
