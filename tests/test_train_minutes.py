"""`edgematting train --minutes N`: the best measured recipe for a time budget
(edgematting/training/recipes.py). The images/s probe is replaced by a fixed figure and the
clock frozen, so the choice is deterministic; one run trains a tiny model for real."""
import json
import math
from pathlib import Path

import pytest

from edgematting.cli import main
from edgematting.errors import InputError
from edgematting.models.registry import REGISTRY
from edgematting.training import recipes
from edgematting.training.config import TrainConfig
from edgematting.training.recipes import MAX_EPOCHS, RECIPES, TRAIN_SHARE, plan_for_budget, recipes_for

ROOT = Path(__file__).resolve().parents[1]
#: training images/s at 256x256 assumed here (about what this 2-core machine does; the
#: figure only has to be fixed, the assertions derive from it)
IPS = {"fast-scnn": 27.0, "mattingnet": 7.0}


def fake_measure(ips_at_256, calls=None):
    """A probe that costs the same per pixel at every size, and records what it was asked."""
    def measure(architecture, input_size, batch_size, width, model_options, policy, jit_compile):
        if calls is not None:
            calls.append((architecture, tuple(input_size), batch_size))
        return ips_at_256 * 256 * 256 / (input_size[0] * input_size[1])
    return measure


def frozen():
    return 0.0


def plan(arch, minutes, given=(), calls=None, **cfg):
    c = TrainConfig(model=arch, out="unused", **cfg)
    return plan_for_budget(c, minutes, set(given), measure=fake_measure(IPS[arch], calls), clock=frozen)


def test_every_architecture_has_a_recipe_table_citing_the_experiments():
    experiments = (ROOT / "docs" / "experiments.md").read_text()
    headings = [line.lstrip("#").strip() for line in experiments.splitlines() if line.startswith("#")]
    for arch in REGISTRY:
        rows = recipes_for(arch)
        bounds = [r.max_images for r in rows]
        assert bounds[-1] is None and all(b is not None for b in bounds[:-1]), arch
        assert bounds[:-1] == sorted(bounds[:-1]), arch
        assert sum(r.measured for r in rows) == 1, f"{arch}: one measured band, the others extrapolated"
        for r in rows:
            for src in r.sources:  # each source is a section of docs/experiments.md
                assert any(h.startswith(src) for h in headings), (arch, src)
            if not r.measured:  # an unmeasured band says what it extrapolates from
                assert "the measured recipe with" in r.evidence, r
    with pytest.raises(InputError, match="No --minutes recipe"):
        recipes_for("no-such-model")


# (architecture, minutes, band): 27 images/s x 60 s x 0.85 = 1,377 Fast-SCNN images a minute
# (bands at 12,000 and 48,000), 357 MattingNet images a minute (bands at 3,300 and 13,200)
BANDS = [
    ("fast-scnn", 5, "short"), ("fast-scnn", 20, "measured"), ("fast-scnn", 480, "long"),
    ("mattingnet", 5, "short"), ("mattingnet", 20, "measured"), ("mattingnet", 480, "long"),
]


@pytest.mark.parametrize("arch,minutes,band", BANDS)
def test_recipe_per_band_fits_the_budget(arch, minutes, band):
    calls = []
    p = plan(arch, minutes, calls=calls)
    c, r = p.config, p.record
    entry = next(e for e in recipes_for(arch) if e.band == band)
    assert r["band"] == band and r["measured"] == entry.measured
    assert (c.batch_size, c.lr) == (entry.batch_size, entry.lr) == (r["batch_size"], r["lr"])
    assert c.recipe == r and c.time_limit == pytest.approx(minutes)  # the hard stop (the frozen probe took 0 s)
    # the run's estimated time from the probed figures: within the budget and filling most of it
    ips = IPS[arch]
    val = c.n_synthetic_val
    seconds = c.epochs * (c.steps_per_epoch * c.batch_size / ips + val / (recipes.VAL_SPEEDUP * ips)
                          + recipes.EPOCH_OVERHEAD_S)
    if c.progressive:
        (h, w), e1 = c.progressive_stage
        low_ips = ips * 4  # the fake probe: a quarter of the pixels, four times the images
        assert (h, w) == (128, 128)
        seconds += e1 * (c.steps_per_epoch * c.batch_size / low_ips
                         + round(val / 4) / (recipes.VAL_SPEEDUP * low_ips) + recipes.EPOCH_OVERHEAD_S)
        assert e1 >= entry.progressive_ratio * c.epochs  # at least the measured share at low resolution
        assert [q[1] for q in calls] == [(256, 256), (128, 128)]  # both sizes probed
    assert 0.9 * minutes * 60 * TRAIN_SHARE <= seconds <= minutes * 60 * TRAIN_SHARE
    assert r["estimated_minutes"] == pytest.approx(seconds / TRAIN_SHARE / 60, abs=0.01)
    # the recipe's first stage only for MattingNet (it did not help Fast-SCNN)
    assert bool(c.progressive) == (arch == "mattingnet")
    total = c.epochs + (c.progressive_stage[1] if c.progressive else 0)
    if band == "long":  # longer epochs, not more of them
        assert total == MAX_EPOCHS and c.steps_per_epoch > entry.steps_per_epoch
    else:
        assert total <= MAX_EPOCHS and c.steps_per_epoch == entry.steps_per_epoch == 25
    assert str(minutes) in p.lines()[0] and band in p.lines()[0]


def test_a_budget_too_short_for_two_stages_trains_one():
    c = plan("mattingnet", 1).config  # 357 images: under 2 epochs of 25 x 8 at 256x256
    assert c.progressive is None and c.epochs == 2 and 1 <= c.steps_per_epoch < 25
    assert "too short for two stages" in " ".join(c.recipe["notes"])


def test_user_flags_win_and_are_reported():
    p = plan("mattingnet", 20, given={"batch_size", "lr", "epochs"}, batch_size=16, lr=1e-3, epochs=10)
    c, r = p.config, p.record
    assert (c.batch_size, c.lr, c.epochs) == (16, 1e-3, 10)
    assert c.progressive is not None  # the rest is the recipe's: its first stage ...
    (_, e1) = c.progressive_stage
    assert e1 == 70  # ... at its measured ratio, 7 epochs per epoch at the size
    assert 1 <= c.steps_per_epoch < 25  # and the epochs' length fills the budget at batch 16
    assert set(r["overridden"]) == {"--batch-size", "--lr", "--epochs"}
    assert r["overridden"]["--batch-size"] == {"recipe": 8, "yours": 16}
    assert "your flags win over the recipe: --batch-size 16 (recipe: 8)" in p.lines()[1]
    # --progressive off (the CLI passes progressive=None as given) drops the recipe's first stage
    off = plan("mattingnet", 20, given={"progressive"})
    assert off.config.progressive is None and off.record["overridden"]["--progressive"]["yours"] == "off"
    assert off.config.epochs > plan("mattingnet", 20).config.epochs
    # a user's stage is kept as given; the epochs at the size take the rest of the budget
    mine = plan("mattingnet", 20, given={"progressive"}, progressive="128:30")
    assert mine.config.progressive == "128x128:30" and mine.config.epochs > 11
    # --epochs and --steps-per-epoch both fixed: nothing left to size; a run over budget says so
    fixed = plan("fast-scnn", 1, given={"epochs", "steps_per_epoch"}, epochs=50, steps_per_epoch=100)
    assert (fixed.config.epochs, fixed.config.steps_per_epoch) == (50, 100)
    assert "the time limit stops it" in " ".join(fixed.record["notes"])


def test_quickstart_sizes_its_run_with_the_same_function():
    # quickstart's formula before it moved here: max(2, int(s * ips * 0.85 // (steps * batch)))
    for seconds, ips in ((600, 10.0), (9, 30.0), (3600, 123.4)):
        assert recipes.epochs_for_budget(seconds, ips, 25, 16) == max(2, int(seconds * ips * 0.85 // 400))
    from edgematting.quickstart import QuickstartConfig

    for bad in (0, -1, math.nan, math.inf):
        with pytest.raises(InputError, match="--minutes must be a positive number"):
            QuickstartConfig(minutes=bad)
    src = (ROOT / "edgematting" / "quickstart.py").read_text()
    assert "measure_images_per_second" in src and "epochs_for_budget" in src and "0.85" not in src


@pytest.mark.parametrize("bad", ["0", "-5", "nan", "inf"])
def test_bad_minutes_one_line_error(tmp_path, capsys, bad):
    out = tmp_path / "run"
    assert main(["train", "--minutes", bad, "--out", str(out)]) == InputError.exit_code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --minutes must be a positive number"), err
    assert not out.exists()


def test_minutes_with_time_limit_is_refused(tmp_path, capsys):
    assert main(["train", "--minutes", "5", "--time-limit", "3", "--out", str(tmp_path / "r")]) == 2
    assert "pass --minutes or --time-limit, not both" in capsys.readouterr().err


def _args(*argv):
    from edgematting.cli import build_parser

    return build_parser().parse_args(["train", *argv])


def test_cli_flags_become_the_recipe_and_win_over_it(tmp_path):
    from edgematting.cli.cmd_train import config_from_args

    calls = []
    cfg = config_from_args(_args("--minutes", "20", "--model", "mattingnet", "--batch-size", "16",
                                 "--progressive", "off", "--out", str(tmp_path / "r")),
                           measure=fake_measure(IPS["mattingnet"], calls))
    assert calls == [("mattingnet", (256, 256), 16)]  # probed at the user's batch, one size only
    assert cfg.batch_size == 16 and cfg.progressive is None and cfg.lr == 3e-3
    assert 19 < cfg.time_limit <= 20 and cfg.recipe["band"] == "measured"
    assert set(cfg.recipe["overridden"]) == {"--batch-size", "--progressive"}
    # without --minutes nothing is probed and the defaults stay
    plain = config_from_args(_args("--out", str(tmp_path / "p")), measure=fake_measure(1.0, calls))
    assert plain.recipe is None and plain.epochs == 10 and plain.batch_size == 8 and len(calls) == 1


@pytest.mark.parametrize("arch", ["fast-scnn", "mattingnet"])
def test_resume_keeps_the_recipe(tmp_path, arch):
    from edgematting.cli.cmd_train import config_from_args
    from edgematting.training.rundir import PROGRESSIVE_FILE, STATE_FILE, STATE_VERSION

    first = plan(arch, 20).config
    out = tmp_path / "run"
    out.mkdir()
    stored = {**first.to_dict(), "out": str(out)}
    if first.progressive:  # a progressive run keeps its settings in progressive.json
        (out / PROGRESSIVE_FILE).write_text(json.dumps(stored))
    else:
        (out / STATE_FILE).write_text(json.dumps({"version": STATE_VERSION, "epoch": 3, "config": stored}))
    assert bool(first.progressive) == (arch == "mattingnet")

    def no_probe(*a, **k):
        raise AssertionError("--resume must not probe again")

    cfg = config_from_args(_args("--out", str(out), "--resume", "--minutes", "5"), measure=no_probe)
    assert cfg.recipe == first.recipe and cfg.resume and cfg.progressive == first.progressive
    assert (cfg.epochs, cfg.steps_per_epoch, cfg.batch_size) == (first.epochs, first.steps_per_epoch, 8)
    assert cfg.time_limit == 5  # this call's budget


@pytest.mark.slow
def test_cli_trains_within_a_tiny_budget_and_records_the_recipe(tmp_path, monkeypatch, capsys):
    """A real run: --minutes 0.2 on a tiny model. The probe is replaced by a figure far above
    what the machine does, so the plan is too long and the time limit has to stop it."""
    calls = []
    monkeypatch.setattr(recipes, "measure_images_per_second", fake_measure(5000.0, calls))
    out = tmp_path / "run"
    rc = main(["train", "--minutes", "0.2", "--input-size", "64", "--width", "0.25", "--batch-size", "4",
               "--out", str(out), "--quiet"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "recipe for 0.2 min (fast-scnn, " in printed
    assert "your flags win over the recipe: --batch-size 4 (recipe: 8)" in printed
    assert calls == [("fast-scnn", (64, 64), 4)]
    training = json.loads((out / "model.json").read_text())["training"]
    state = json.loads((out / "state.json").read_text())
    rec = training["recipe"]
    assert rec == state["config"]["recipe"]
    assert rec["minutes"] == 0.2 and rec["batch_size"] == 4
    # the band (which depends on the seconds the start-up left) is the one of the budget recorded
    assert f"{rec['band']} band" in printed and recipes.pick_recipe("fast-scnn", rec["budget_images"]).band == rec["band"]
    limit = state["config"]["time_limit"]
    assert limit <= 0.2 and training["batch_size"] == 4
    assert training["epochs"] == rec["epochs"] and training["steps_per_epoch"] == rec["steps_per_epoch"]
    # the hard stop: every epoch but the last began before the time limit, and the run ended early
    epoch_seconds = [s for s in state["history"]["epoch_seconds"] if s is not None]
    assert 1 <= len(epoch_seconds) < rec["epochs"]
    assert sum(epoch_seconds[:-1]) < limit * 60
    assert "time limit reached" in printed


def test_reference_doc_shows_the_table():
    text = (ROOT / "docs" / "reference.md").read_text()
    assert recipes.recipes_markdown() in text, "regenerate: python -c 'from edgematting.training.recipes " \
        "import recipes_markdown; print(recipes_markdown())'"
    assert len(RECIPES) == len(recipes.recipes_markdown().splitlines()) - 2
