"""``neurocomp check``: the three levels of e-prop on loihi2, CI-sized (short trials, few
iterations). The bounds are loose on purpose: the run is too short for learning curves to
separate, so the tests check what must hold regardless — the levels start from the same
network, the lowered updates point the reference's way, attribution runs every row, and
the report and plots are written."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neurocomp.analysis import CheckError, check
from neurocomp.cli import main

from .conftest import ROOT

MODEL = ROOT / "examples" / "eprop_pattern.yaml"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("check")
    return check(MODEL, "loihi2", "pattern-generation", iterations=2, align=1, steps=250, out=out, progress=False), out


def test_levels_start_from_the_same_network(report):
    rep, _ = report
    c = rep.curves
    assert set(c) >= {"reference", "bptt", "lowered-float", "lowered-fixed"}
    # iteration 0 of the reference and of BPTT is the same forward pass of the same weights
    assert c["reference"]["loss"][0] == pytest.approx(c["bptt"]["loss"][0], rel=0.5)  # online vs end-of-trial
    # the chip's dynamics at the initial weights follow the float64 dynamics closely
    s = rep.spikes["reference vs lowered-fixed (initial weights)"]
    assert s["coincidence"] > 0.7 and s["rate_error_hz_mean"] < 10


def test_lowered_updates_point_the_reference_way(report):
    """Teacher-forced from the same weights, the readout's lowered update must be well
    aligned with the reference's (they share B-free structure: err * filtered z); a sign
    or scale error in the lowering would give a cosine near -1 or 0."""
    rep, _ = report
    for level in ("lowered-float", "lowered-fixed"):
        out = rep.alignment["levels"][level]["rec->out"]
        assert out["cosine_mean"] > 0.5, level
        rec = rep.alignment["levels"][level]["in->rec"]
        assert rec["cosine_mean"] > 0.0, level


def test_attribution_has_every_row_and_report_files(report):
    from neurocomp.emulator import LEARN_QUANTITIES

    rep, out = report
    rows = [r["row"] for r in rep.attribution]
    assert rows[0].startswith("all quantized") and rows[-1].startswith("all float")
    assert "fixed, round-to-nearest" in rows
    assert [r for r in rows if r.endswith("in float")] == [f"fixed, {q} in float" for q in LEARN_QUANTITIES]
    data = json.loads((out / "report.json").read_text())
    assert data["config"]["profile"] == "loihi2" and len(data["curves"]["lowered-fixed"]["nmse"]) == 2
    assert (out / "summary.txt").read_text().startswith("neurocomp check")
    pytest.importorskip("matplotlib")
    for png in ("learning_curves.png", "alignment.png", "raster.png") + (("attribution.png",) if rows else ()):
        assert (out / png).stat().st_size > 1000


def test_check_refuses_models_without_a_checkable_rule(tmp_path):
    import neurocomp as nc

    net = nc.Network(name="static")
    net.add(nc.Population("in", 2, nc.SpikeInput()), nc.Population("out", 1, nc.LI(tau_mem_ms=10.0)))
    net.add(nc.Projection("in", "out", np.full((1, 2), 0.1)))
    with pytest.raises(CheckError, match="no plastic projection"):
        check(net, "loihi2", "pattern-generation", iterations=1)


def test_check_refuses_unknown_attribution_rows():
    with pytest.raises(CheckError, match=r"unknown attribution rows \['weight'\].*valid: weights"):
        check(MODEL, "loihi2", "pattern-generation", iterations=1, attribution=["weight", "nearest"])


def test_cli_check_writes_the_report(tmp_path, capsys):
    rc = main(["check", str(MODEL), "--profile", "loihi2", "--task", "pattern-generation", "--iterations", "1",
               "--align", "1", "--steps", "250", "--attribution", "nearest", "--no-bptt",
               "--out", str(tmp_path)])  # fmt: skip
    assert rc == 0
    assert "learning curves" in capsys.readouterr().out
    rep = json.loads((tmp_path / "report.json").read_text())
    assert np.isfinite(rep["final"]["lowered-fixed"]["nmse"])
    # only the chosen attribution row ran, between the two ends of the table
    rows = [r["row"] for r in rep["attribution"]]
    assert rows == ["all quantized (lowered-fixed)", "fixed, round-to-nearest", "all float (lowered-float)"]
    assert "bptt" not in rep["curves"]


@pytest.mark.parametrize("profile", ["spinnaker2", "reckon"])
def test_check_runs_on_chips_that_hold_weights_otherwise(profile):
    """spinnaker2 learns float32 weights in model units (per-row exponents in its Program),
    ReckOn learns mantissas: the levels must start from the reference's weights all the same.
    Teacher-forced, the readout's update (err * filtered z, no feedback weights involved)
    must point the reference's way, as on loihi2."""
    from neurocomp.graph.io import load_network

    net = load_network(MODEL)
    if profile == "reckon":  # ReckOn's learning signal is symmetric only
        net = net.with_rule_params(feedback="symmetric")
    rows = ["tags", "products", "nearest"]  # ReckOn has no tags nor products; spinnaker2 none of them
    rep = check(net, profile, "pattern-generation", iterations=1, align=1, steps=250, attribution=rows,
                bptt=False, progress=False, plots=False)  # fmt: skip
    for level in ("lowered-float", "lowered-fixed"):
        assert rep.alignment["levels"][level]["rec->out"]["cosine_mean"] > 0.5, level
    assert np.isfinite(rep.final["lowered-fixed"]["nmse"])
    # the rows the chip's engine cannot run are said, not run, and not silently dropped
    ran = [r["row"] for r in rep.attribution if r["row"].startswith("fixed, ")]
    skipped = "tags, products" if profile == "reckon" else "tags, products, nearest"
    assert ran == (["fixed, round-to-nearest"] if profile == "reckon" else [])
    assert any(f"has no {skipped} to switch" in n for n in rep.notes), rep.notes


def test_attribution_is_in_absolute_differences(report):
    """Each row's difference is its metric minus lowered-fixed's, in the metric's units (a share
    of the fixed-to-float gap, meaningless when that gap is ~0, is not reported)."""
    rep, _ = report
    fixed = rep.final["lowered-fixed"]["nmse"]
    for row in rep.attribution:
        assert row["difference"] == row["nmse"] - fixed
        assert "gap_closed" not in row
    assert rep.attribution[0]["difference"] == 0.0
    assert "% of the gap" not in rep.summary() and "closes" not in rep.summary()


def test_attribution_over_seeds_gives_mean_and_spread():
    """Two seeds with hand-picked values: mean and sample std (ddof 1) written out here."""
    from neurocomp.analysis import CheckReport, attribution_over_seeds

    def rep(fixed, row):
        return CheckReport(
            config={"metric": "nmse"},
            attribution=[
                {"row": "all quantized (lowered-fixed)", "nmse": fixed, "difference": 0.0},
                {"row": "fixed, weights in float", "nmse": row, "difference": row - fixed},
            ],
        )

    rows = attribution_over_seeds([rep(1.0, 0.5), rep(2.0, 1.1)])
    w = rows[1]
    assert w["seeds"] == 2
    assert w["nmse"] == pytest.approx(0.8, abs=1e-12)  # (0.5 + 1.1) / 2
    assert w["std"] == pytest.approx(0.6 / np.sqrt(2), abs=1e-12)  # |0.5 - 1.1| / sqrt(2)
    assert w["difference"] == pytest.approx(-0.7, abs=1e-12)  # (-0.5 - 0.9) / 2
    assert w["difference_std"] == pytest.approx(0.4 / np.sqrt(2), abs=1e-12)
    assert rows[0]["difference_std"] == 0.0


def test_attribution_notes_rows_worse_than_the_chip():
    """A quantity-in-float row worse than lowered-fixed beyond the seeds' spread gets a note
    (and the table a line naming the exact-products run); one within the spread, a better one, the
    round-to-nearest row and, one seed, a row within 25 % of lowered-fixed get none. Values
    hand-picked around the margins."""
    from neurocomp.analysis.check import format_attribution

    def row(name, nmse, diff, std=None, seeds=1):
        r = {"row": name, "nmse": nmse, "difference": diff}
        return {**r, "std": 0.0, "difference_std": std, "seeds": seeds} if std is not None else r

    fixed = row("all quantized (lowered-fixed)", 0.1, 0.0, 0.0, 3)
    seeds = [fixed, row("fixed, tags in float", 0.7, 0.6, 0.2, 3), row("fixed, traces in float", 0.15, 0.05, 0.08, 3),
             row("fixed, weights in float", 0.05, -0.05, 0.01, 3), row("fixed, round-to-nearest", 1.1, 1.0, 0.1, 3)]
    lines = format_attribution(seeds, "nmse")
    notes = [line for line in lines if "note:" in line]
    assert len(notes) == 1 and "tags in float" in notes[0]
    assert "learn_float=(quantity, 'products')" in lines[-1]  # the run that leaves the floor out
    one = [row("all quantized (lowered-fixed)", 0.1, 0.0), row("fixed, graded in float", 0.13, 0.03),
           row("fixed, products in float", 0.12, 0.02)]
    notes = [line for line in format_attribution(one, "nmse") if "note:" in line]
    assert len(notes) == 1 and "graded in float" in notes[0]
    # a metric where higher is better: a row worse than the chip has a negative difference
    higher = [row("all quantized (lowered-fixed)", 0.8, 0.0), row("fixed, tags in float", 0.3, -0.5)]
    assert any("note:" in line for line in format_attribution(higher, "nmse", higher_is_better=True))
    assert not any("note:" in line for line in format_attribution(higher, "nmse"))


def test_help_lists_check_its_tasks_and_attribution_rows(capsys):
    from neurocomp.analysis.check import ATTRIBUTION_ROWS
    from neurocomp.tasks import TASKS

    with pytest.raises(SystemExit):
        main(["--help"])
    assert "neurocomp check " in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    text = capsys.readouterr().out
    for name in (*TASKS, *ATTRIBUTION_ROWS):
        assert f"\n  {name} " in text, name


def test_progress_prints_lines_off_a_terminal(capsys):
    """In a log or `make demo` (no terminal) a long check prints one line per tenth of its work."""
    from neurocomp.analysis.check import _Progress

    bar = _Progress(20, enabled=True, tty=False)
    for k in range(20):
        bar(f"step {k}")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 10 and lines[-1].startswith("  check: 100%") and "\r" not in "".join(lines)


def test_cli_check_over_seeds_reports_the_spread(tmp_path, capsys):
    rc = main(["check", str(MODEL), "--profile", "loihi2", "--task", "pattern-generation", "--iterations", "1",
               "--align", "0", "--steps", "250", "--attribution", "nearest", "--no-bptt", "--seeds", "0,1",
               "--out", str(tmp_path)])  # fmt: skip
    assert rc == 0
    text = (tmp_path / "attribution_seeds.txt").read_text()
    assert "(2 seeds)" in text and "+-" in text
    per = [json.loads((tmp_path / f"seed-{s}" / "report.json").read_text()) for s in (0, 1)]
    near = [next(r for r in p["attribution"] if r["row"] == "fixed, round-to-nearest")["difference"] for p in per]
    assert f"difference {np.mean(near):+9.4f}" in text
    assert main(["check", str(MODEL), "--profile", "loihi2", "--task", "pattern-generation", "--seeds", "0,x"]) == 2
