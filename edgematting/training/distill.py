"""Distillation: a teacher model labels photos for the run (``TrainConfig.teacher``).

With ``unlabelled`` the teacher's mattes are the labels of photos that have none; with
``teacher_edges`` they give the binary labels of a ``data`` folder soft edges. The mattes are
cached in the run directory's teacher/ folder, so a resumed or restarted run reuses them: it
labels only the photos without a valid matte (interrupted, new or changed ones, see
`teacher.cache_teacher_mattes`), one photo at a time, with a progress bar on a terminal.
"""
from __future__ import annotations

from pathlib import Path

from ..teacher import cache_teacher_mattes, list_photos, resolve_teacher
from .config import TrainConfig
from .rundir import TEACHER_DIR


def teacher_pairs(cfg: TrainConfig, out: Path, progress: bool = True):
    """Resolve the teacher and label the photos it is asked to (cached in OUT/teacher/):
    (--unlabelled pairs [(photo, matte)], {--data photo: matte} for --teacher-edges).
    `out` is the folder that holds teacher/."""
    teacher = resolve_teacher(cfg.teacher, cfg.teacher_options)
    results = []
    for folder, wanted in ((cfg.unlabelled, cfg.unlabelled is not None), (cfg.data, cfg.teacher_edges)):
        if not wanted:
            results.append([])
            continue
        photos = list_photos(folder)
        if progress:
            print(f"teacher {teacher.name} ({teacher.kind}): {len(photos)} photos in {folder}", flush=True)
        _, pairs, bad = cache_teacher_mattes(teacher, photos, out / TEACHER_DIR, root=Path(folder),
                                             skip_bad=True if folder == cfg.data else cfg.skip_bad,
                                             progress=progress)
        if bad and progress and folder != cfg.data:
            print(f"warning: skipped {len(bad)} unreadable photo(s) in {folder} (--skip-bad)")
        results.append([(str(ph), str(m)) for ph, m in pairs])
    return results[0], dict(results[1])


def teacher_record(cfg: TrainConfig) -> dict | None:
    """What model.json's training says of the teacher (None for a run without one)."""
    if not cfg.teacher:
        return None
    return {"spec": cfg.teacher, "distill_weight": cfg.distill_weight, "edges": cfg.teacher_edges,
            **{k: v for k, v in (("input", cfg.teacher_input), ("channels", cfg.teacher_channels),
                                 ("output", cfg.teacher_output)) if v}}
