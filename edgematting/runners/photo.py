"""Photo in, alpha out: any model behind the artifact contract's pre- and post-processing.

`PhotoRunner` is what `edgematting.runners.open` returns for a model directory (Keras), a
converted artifact (run by its format's runner with the contract of its sidecar, exactly
as an app would), a foreign .tflite/.onnx (`runners.foreign`), or a Runner / callable
taking the Keras model's normalized float input. predict, evaluate, bench (ours and the
peer), the distillation teacher and verify all go through it, stage by stage:

    photos --inputs()--> native input tensor --run_raw()--> raw output
           --run() (decode_output)--> alpha at model size --upsample_alpha()--> alpha at photo size

The photo-size stages are `ops` (`edgematting.imageops_cv.get_ops`): by default the OpenCV
path, within the bounds stated in `edgematting.imageops_cv` of the definitions in
`edgematting.imageops` that the Android core reproduces; ``pipeline="exact"`` runs
`edgematting.imageops_fast`, bit for bit those definitions.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .. import contract  # called through the module: tests patch its mappings
from .. import imageops, imageops_fast
from ..contract import validate_metadata
from ..modelio import ModelSpec


def keras_contract(spec: ModelSpec) -> dict:
    """The contract of a Keras model (normalized float32 NHWC in, float alpha out)."""
    from ..models.registry import OUTPUT_MEANINGS

    h, w = spec.input_size
    meaning = spec.output_meaning if spec.output_meaning in OUTPUT_MEANINGS else next(iter(OUTPUT_MEANINGS))
    return validate_metadata({
        "format_version": 1,
        "input": {"height": h, "width": w, "channels": spec.channels, "channel_order": spec.channel_order, "layout": "NHWC",
                  "dtype": "float32", "mean": list(spec.mean), "std": list(spec.std),
                  "normalization_in_model": False, "quantization": None},
        "output": {"height": h, "width": w, "channels": 1, "dtype": "float32", "meaning": meaning,
                   "range": [0.0, 1.0], "threshold": spec.threshold},
    })


def artifact_spec(meta: dict, contract: dict) -> ModelSpec:
    """A `ModelSpec` for reports, from an artifact's metadata."""
    mean = contract["model_mean"] or imageops.DEFAULT_MEAN
    std = contract["model_std"] or imageops.DEFAULT_STD
    return ModelSpec(architecture=str(meta.get("architecture", "unknown")), config={},
                     input_size=(contract["height"], contract["width"]), name=str(meta.get("model_name", "")),
                     channel_order=contract["channel_order"][:3], mean=mean, std=std,
                     output_meaning=contract["meaning"], threshold=contract["threshold"])


def upsample_alpha(alpha, photo: np.ndarray, guided=None) -> np.ndarray:
    """A model-resolution alpha -> the photo's size: bilinear, or the edge-aware guided
    filter (`imageops.guided_upsample`, guided by the photo) when `guided` (an
    `imageops.GuidedFilter`) is given. The exact path (`imageops_fast`); a runner's own
    pipeline is ``PhotoRunner.ops.upsample_alpha``."""
    a = np.asarray(alpha, np.float32)
    if guided is None:
        return imageops_fast.alpha_to_photo(a, photo.shape[:2])
    return imageops_fast.guided_upsample(a.reshape(a.shape[-3], a.shape[-2]) if a.ndim >= 3 else a, photo,
                                         guided.radius, guided.eps)


def _as_alpha_batch(y, n: int) -> np.ndarray:
    a = np.asarray(y, dtype=np.float32)
    if a.ndim == 3:
        a = a[..., None]
    if a.ndim != 4 or a.shape[0] != n or a.shape[-1] != 1:
        raise ValueError(f"predictor returned shape {a.shape}; expected ({n}, H, W, 1)")
    return a


class PhotoRunner:
    """A model as the photo pipeline sees it (`edgematting.contract`).

    `spec` gives what reports need (name, input size, threshold); `contract` is the validated
    input/output mapping; `kind` is "keras", "tflite", "onnx", "coreml", "foreign" or
    "callable"; `engine` says what computes it; `runner` is the format's own Runner (None
    for Keras and callables).
    """

    def __init__(self, spec: ModelSpec, contract: dict, run_raw: Callable[[np.ndarray], np.ndarray], *,
                 kind: str, engine: str = "", batch_one: bool = False, path=None, keras_model=None,
                 runner=None, metadata: dict | None = None):
        self.spec, self.contract, self.run_raw = spec, contract, run_raw
        self.kind, self.engine, self.batch_one, self.path = kind, engine, batch_one, path
        self.keras_model, self.runner = keras_model, runner
        self.metadata = metadata or {}
        #: what a NonFiniteError tells the user to do (None: judged from `kind`)
        self.nonfinite_hint: str | None = None
        #: the photo-size stages: "opencv", "exact" (`imageops_fast`), None: the default
        #: (`imageops_cv.default_pipeline`); `runners.open` sets it and the thread count
        self.pipeline: str | None = None
        self.num_threads = 1

    @property
    def ops(self):
        """The photo-size stages this runner runs (`imageops_cv.PhotoOps`), OpenCV's threads
        set to the runner's."""
        from ..imageops_cv import get_ops

        return get_ops(self.pipeline, self.num_threads)

    @property
    def takes_prior(self) -> bool:
        """A prior-frame model: its 4th input channel is the previous frame's alpha
        (`edgematting.prior`; the contract's channel order "RGB+prior")."""
        return bool(self.contract.get("prior"))

    def model_prior(self, prior) -> np.ndarray | None:
        """A previous alpha (HxW or HxWx1 in [0, 1], at model size or any other size, e.g. the
        photo's) -> (h, w, 1) at model size (bilinear); None stays None (zeros: a first frame)."""
        if prior is None:
            return None
        c = self.contract
        p = np.asarray(prior, np.float32)
        p = p[..., 0] if p.ndim == 3 else p
        if p.shape != (c["height"], c["width"]):
            p = imageops_fast.resize_bilinear(p, c["height"], c["width"])
        return np.clip(p, 0.0, 1.0)[..., None]

    def inputs(self, photos: Sequence[np.ndarray], priors=None) -> np.ndarray:
        """Photos (HxWx3 uint8) -> the stacked native input tensor (`contract.model_input`).
        `priors`: a prior-frame model's previous alphas, one per photo (`model_prior`; None or
        a None entry: zeros, a first frame); ignored by any other model."""
        c = self.contract
        ops = self.ops
        px = np.stack([ops.model_pixels(np.asarray(p), c["height"], c["width"]) for p in photos])
        if not c.get("prior"):
            return contract.encode_pixels(px, c)
        ps = [None] * len(photos) if priors is None else list(priors)
        if len(ps) != len(photos):
            raise ValueError(f"{len(photos)} photos but {len(ps)} priors")
        p = np.stack([np.zeros((c["height"], c["width"], 1), np.float32) if q is None else self.model_prior(q)
                      for q in ps])
        return contract.encode_pixels(px, c, prior=p)

    def run(self, x: np.ndarray) -> np.ndarray:
        """Native input batch -> float alpha (N, h, w, 1) on the [0, 1] scale (not clipped).
        NonFiniteError (exit 9), naming the first bad layer when it can, on NaN/Inf."""
        from ..finite import check_output

        if self.batch_one:
            y = np.concatenate([contract.decode_output(self.run_raw(x[i:i + 1]), self.contract)
                                for i in range(len(x))])
        else:
            y = contract.decode_output(self.run_raw(x), self.contract)
        y = _as_alpha_batch(y, len(x))
        if not np.all(np.isfinite(y)):
            where = f"The model {self.path or self.spec.name}"
            kw = {} if self.keras_model is not None or self.path is None or self.kind in ("keras", "callable") else {
                "hint": f"Its weights are corrupt, or its conversion is: `edgematting verify {self.path}` compares it "
                        "with its Keras model."}
            if self.nonfinite_hint:
                kw["hint"] = self.nonfinite_hint
            check_output(y, model=self.keras_model, x=x if self.keras_model is not None else None, what=where,
                         artifact=self.path if self.kind == "tflite" else None, native=x, **kw)
        return y

    def run_normalized(self, x: np.ndarray) -> np.ndarray:
        """The Keras model's input ((N, H, W, 3) float32, normalized as in model.json) -> float
        alpha (N, h, w, 1): how verify feeds the Keras model and the artifact the same data."""
        x = np.asarray(x, np.float32)
        if self.contract.get("prior") and x.shape[-1] == 3:  # a prior-frame model: zeros (a first frame)
            x = np.concatenate([x, np.zeros(x.shape[:-1] + (1,), np.float32)], axis=-1)
        if self.kind in ("keras", "callable"):  # the normalized input is their native input
            return self.run(x)
        return self.run(contract.encode_normalized(x, self.contract))

    __call__ = run_normalized

    def predict_photo(self, rgb: np.ndarray, guided=None, prior=None) -> np.ndarray:
        """Photo (HxWx3 uint8 RGB) -> alpha (HxW float32) at the photo's size; `guided`: an
        `imageops.GuidedFilter` for edge-aware upsampling (the sidecar's own choice is
        ``contract["guided_filter"]``), None for bilinear. `prior`: for a prior-frame model,
        the previous frame's alpha (any size, `model_prior`); None: zeros (a single photo)."""
        return self.ops.upsample_alpha(self.run(self.inputs([rgb], None if prior is None else [prior]))[0], rgb, guided)

    def predict_photos(self, photos: Sequence[np.ndarray], guided=None) -> list[np.ndarray]:
        """`predict_photo` of each photo, the model run once on the whole batch."""
        if not photos:
            return []
        lowres = self.run(self.inputs(photos))
        ops = self.ops
        return [ops.upsample_alpha(lowres[i], p, guided) for i, p in enumerate(photos)]


def from_keras(model, spec: ModelSpec, path=None) -> PhotoRunner:
    """A loaded Keras model with its `ModelSpec`."""
    def run_raw(x):
        return np.asarray(model.predict_on_batch(np.asarray(x, np.float32)))

    from .._tf import tf

    return PhotoRunner(spec, keras_contract(spec), run_raw, kind="keras", engine=f"tf-keras {tf().__version__} (CPU)",
                       path=Path(path) if path is not None else None, keras_model=model)


def from_callable(model, spec: ModelSpec) -> PhotoRunner:
    """A Runner (``.run``) or callable mapping the Keras model's normalized float input to
    alpha, with the `ModelSpec` that gives its input size and normalization."""
    if not isinstance(spec, ModelSpec):
        raise TypeError("a runner or callable needs its ModelSpec: pass spec=load_spec(model_dir) "
                        "(it gives the input size and normalization)")
    if hasattr(model, "run"):
        fn = model.run
    elif callable(model):
        fn = model
    else:
        raise TypeError(f"expected a model directory, a Runner or a callable, got {type(model).__name__}")
    return PhotoRunner(spec, keras_contract(spec), fn, kind="callable", engine=type(model).__name__)


def from_runner(runner, kind: str, path=None, metadata: dict | None = None) -> PhotoRunner:
    """A format's Runner, driven by `metadata` (default: the runner's own embedded metadata)."""
    meta = metadata if metadata is not None else runner.metadata
    contract = validate_metadata(meta)
    return PhotoRunner(artifact_spec(meta, contract), contract, runner.run_raw, kind=kind,
                       engine=getattr(runner, "engine", kind), batch_one=getattr(runner, "batch_one", True),
                       path=Path(path) if path is not None else None, runner=runner, metadata=meta)
