"""Where full-integer int8 error comes from, and selective quantization.

`tf.lite.experimental.QuantizationDebugger` runs the int8 model instrumented with
NumericVerify ops and measures, per quantized tensor, the error between the float and the
dequantized int8 value. We rank layers by RMSE / scale (error in units of the tensor's
quantization step, the measure the TFLite debugger guide recommends: > ~0.7 means the
layer loses more than rounding), write the whole table as CSV and print the ten worst.
`keep_float=N` then builds a full-int8 TFLite model with those N layers left in float
(`QuantizationDebugOptions(denylisted_nodes=...)`), so the table shows the trade-off.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path


from .. import atomic
from ..modelio import load_model_dir


def _converter_and_data(model_dir: Path, data: str | None, n: int = 16):
    """The int8 TFLite converter exactly as `convert --precision int8` configures it."""
    from ..converters import ExportConfig
    from ..converters.tflite import make_converter

    model, spec = load_model_dir(model_dir)
    conv, gen = make_converter(model, spec, ExportConfig(target="tflite", precision="int8", calib=data,
                                                         calib_samples=n, verify=False))
    return conv, gen, spec


def layer_errors(model_dir: Path, data: str | None = None, n: int = 16):
    """Run the debugger; returns (rows sorted worst first, csv text, converter, gen, spec)."""
    from .._tf import tf

    conv, gen, spec = _converter_and_data(model_dir, data, n)
    dbg = tf().lite.experimental.QuantizationDebugger(converter=conv, debug_dataset=gen)
    dbg.run()
    buf = io.StringIO()
    dbg.layer_statistics_dump(buf)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    for r in rows:
        scale = float(r.get("scale") or 0.0)
        mse = float(r.get("mean_squared_error") or 0.0)
        r["rmse/scale"] = math.sqrt(mse) / scale if scale > 0 else 0.0
    rows.sort(key=lambda r: -r["rmse/scale"])
    out = io.StringIO()
    if rows:
        w = csv.DictWriter(out, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows, out.getvalue(), conv, gen, spec


def int8_error_report(model_dir, export_dir, out_dir, keep_float: int = 0, data=None, console=None) -> dict:
    """Write int8_layer_errors.csv (+ top-10 on screen); with keep_float, a selective model.

    Returns {"worst": [...10 rows], "csv": path, "keep_float_artifact": path|None} (the
    selective model is an ordinary artifact in export_dir, so the bench picks it up).
    """
    model_dir, export_dir, out_dir = Path(model_dir), Path(export_dir), Path(out_dir)
    rows, text, conv, gen, spec = layer_errors(model_dir, data)
    atomic.write_bytes(out_dir / "int8_layer_errors.csv", text.encode())
    worst = rows[:10]
    if console is not None and worst:
        from rich.table import Table

        t = Table(title="int8: ten layers with the largest error (RMSE in quantization steps)")
        for c in ("tensor", "op", "rmse/scale", "max abs err", "scale"):
            t.add_column(c)
        for r in worst:
            t.add_row(r["tensor_name"][-60:], r["op_name"], f"{r['rmse/scale']:.3f}",
                      f"{float(r.get('max_abs_error') or 0):.4g}", f"{float(r['scale']):.4g}")
        console.print(t)
    result = {"worst": worst, "csv": str(out_dir / "int8_layer_errors.csv"), "keep_float_artifact": None}
    if keep_float > 0 and rows:
        # An ordinary, verified artifact in export_dir (so the bench picks it up), made by
        # the one conversion path with the worst tensors denylisted.
        from ..converters import ExportConfig, convert_model

        names = [r["tensor_name"] for r in rows[:keep_float]]
        cfg = ExportConfig(target="tflite", precision="int8", calib=data, calib_samples=16,
                           verify_data=data, tflite={"keep_float": names})
        art = convert_model(model_dir, cfg, export_dir, progress=console is not None)
        result["keep_float_artifact"] = str(art.path)
    atomic.write_json(out_dir / "int8_debug.json", result)
    return result
