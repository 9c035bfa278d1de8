"""The loss-shape figure (``robustreg.report.shapes``): what is drawn, from the losses' own methods, written deterministically."""

from __future__ import annotations

import numpy as np
import pytest

from robustreg.losses import LOSSES, get_loss, registered_losses
from robustreg.report.shapes import NAME, coinciding_losses, draw_loss_shapes, loss_shapes_figure
from robustreg.report.style import style_map

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PDF_MAGIC = b"%PDF-"


@pytest.fixture(scope="module")
def fig():
    return loss_shapes_figure(registered_losses())


def _lines(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def _at(line, r):
    x = np.asarray(line.get_xdata())
    (i,) = np.flatnonzero(x == r)
    return float(np.asarray(line.get_ydata())[i])


def test_three_panels_with_their_labels(fig):
    axes = fig.axes
    assert len(axes) == 3
    assert [ax.get_xlabel() for ax in axes] == ["residual r"] * 3
    assert [ax.get_ylabel() for ax in axes] == ["rho(r)", "psi(r)", "weight psi(r)/r"]


def test_one_line_per_registered_loss_in_each_panel_and_one_legend(fig):
    names = set(LOSSES)
    for ax in fig.axes:
        # No reference lines are drawn: every line is a loss.
        assert len(ax.get_lines()) == len(LOSSES)
        assert set(_lines(ax)) == names
        assert ax.get_legend() is None
    assert len(fig.legends) == 1
    entries = [t.get_text() for t in fig.legends[0].get_texts()]
    assert sorted(entries) == sorted(names) and len(entries) == len(names)
    # The look of every other figure.
    styles = style_map(names)
    for label, line in _lines(fig.axes[0]).items():
        assert line.get_color() == styles[label]["color"] and line.get_marker() == styles[label]["marker"]


def test_drawn_values_are_the_losses_own(fig):
    rho_ax, psi_ax, w_ax = fig.axes
    x = np.asarray(_lines(rho_ax)["l2"].get_xdata())
    assert x[0] == -6.0 and x[-1] == 6.0
    for name in LOSSES:
        loss = get_loss(name)
        np.testing.assert_array_equal(_lines(rho_ax)[name].get_ydata(), loss.rho(x))
        np.testing.assert_array_equal(_lines(psi_ax)[name].get_ydata(), loss.psi(x))
    l1 = np.asarray(_lines(psi_ax)["l1"].get_ydata())
    assert np.all(np.abs(l1) <= 1.0) and np.abs(l1).max() == 1.0
    l2 = _lines(psi_ax)["l2"]
    assert _at(l2, 6.0) == pytest.approx(6.0 * _at(l2, 1.0), rel=1e-12) and _at(l2, 1.0) != 0
    tukey, c = _lines(w_ax)["tukey"], get_loss("tukey").c
    w = np.asarray(tukey.get_ydata())
    assert np.all(w[np.abs(x) >= c] == 0.0) and np.all(w[np.abs(x) < c] > 0.0)
    # L1's weight 1/|r| is infinite at 0: a gap in the drawn line, and said in the panel's title.
    w_l1 = np.asarray(_lines(w_ax)["l1"].get_ydata())
    assert np.isnan(w_l1[x == 0.0]).all() and np.all(np.isfinite(w_l1[x != 0.0]))
    assert "l1 (infinite at r = 0" in w_ax.get_title()


def test_clipping_and_coincidences_are_said(fig):
    rho_ax, psi_ax, _ = fig.axes
    # L2's rho = r^2 reaches 36: clipped so that the others stay readable, and the title says so.
    assert rho_ax.get_ylim()[1] < 36 and "l2 (reaches 36)" in rho_ax.get_title()
    assert "l2 (reaches 12)" in psi_ax.get_title()
    # At the defaults (beta = 1, delta = 1) Smooth L1 and Huber coincide exactly, as do pseudo-Huber and Barron.
    assert get_loss("huber").delta == get_loss("smooth_l1").beta == 1.0
    assert coinciding_losses(registered_losses()) == [["smooth_l1", "huber"], ["pseudo_huber", "barron"]]
    title = fig.get_suptitle()
    assert "smooth_l1 (beta = 1) and huber (delta = 1) coincide exactly" in title
    assert "pseudo_huber (delta = 1) and barron (alpha = 1, c = 1) coincide exactly" in title


def test_files_are_written_and_byte_identical_across_runs(tmp_path):
    first = draw_loss_shapes(tmp_path / "a", registered_losses())
    second = draw_loss_shapes(tmp_path / "b", registered_losses())
    assert first.name == NAME
    assert [p.name for p in first.files] == [f"{NAME}.png", f"{NAME}.pdf"]
    assert all(p.parent == tmp_path / "a" / "figures" for p in first.files)
    for a, b in zip(first.files, second.files):
        data = a.read_bytes()
        magic = PNG_MAGIC if a.suffix == ".png" else PDF_MAGIC
        assert data[: len(magic)] == magic and len(data) > 1000
        assert data == b.read_bytes(), a.name
    assert "coincide exactly" in first.caption
