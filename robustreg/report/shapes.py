r"""The shapes of the registered losses: :math:`\rho(r)`, :math:`\psi(r) = \rho'(r)` and the weight :math:`\psi(r)/r`.

One figure, ``loss_shapes.png`` / ``.pdf``, three panels side by side, one
line per loss it is given (the findings page gives every registered loss at
its default constants, :func:`robustreg.losses.registered_losses`), drawn with
the look it has in every other figure (:func:`robustreg.report.style.style_map`,
keyed by the report's loss label, which for a loss at its defaults is its
registry name).  The values are the losses' own methods ``rho``, ``psi``
and ``weights``, on :math:`r \in [-6, 6]` in steps of 0.01 (``r`` in units
of the error scale for the scale-dependent losses: the estimator applies
them to :math:`r / \sigma`).  Nothing is normalised: ``weights`` is the
loss's own :math:`\psi(r)/r` (2 for L2, whose :math:`\rho = r^2`).

A panel whose losses have very different ranges keeps the others readable:
a loss whose largest value on the grid is more than :data:`CLIP_FACTOR`
times the median of the losses' largest values runs off the top, and the
panel's title says which loss is clipped and how far it goes.  Losses
whose three curves coincide exactly at their defaults (at the defaults,
Smooth L1 with ``beta = 1`` and Huber with ``delta = 1``:
:math:`\mathrm{Huber}_\delta = \delta\, \mathrm{SmoothL1}_{\beta=\delta}`;
pseudo-Huber with ``delta = 1`` and Barron with ``alpha = 1, c = 1``) are
found on the grid and named in the figure's title: their lines lie on top
of each other, the first drawn wider and the markers staggered, so that
both stay visible.

>>> from robustreg.losses import registered_losses
>>> from robustreg.report.shapes import draw_loss_shapes
>>> record = draw_loss_shapes("results/shapes", registered_losses())  # doctest: +SKIP
>>> record.files  # doctest: +SKIP
[PosixPath('results/shapes/figures/loss_shapes.png'), PosixPath('results/shapes/figures/loss_shapes.pdf')]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .figures import FigureRecord, _legend, _marker_spacing, _Out
from .style import label_order, style_map

__all__ = ["CLIP_FACTOR", "NAME", "RESIDUALS", "coinciding_losses", "draw_loss_shapes",
           "loss_shapes_figure"]

#: The figure's file stem.
NAME = "loss_shapes"
#: The residual grid, -6 to 6 in steps of 0.01 (integers over 100: 1.0 and 6.0 are on it exactly).
RESIDUALS = np.arange(-600, 601) / 100.0
#: A loss whose largest value in a panel exceeds this multiple of the median of the losses' largest values is clipped.
CLIP_FACTOR = 3.0

_PANELS = (
    ("rho", "rho(r)", "loss rho(r)"),
    ("psi", "psi(r)", "psi(r) = rho'(r)"),
    ("weights", "weight psi(r)/r", "weight psi(r)/r"),
)
#: Why two losses coincide, where it is a known identity (shown only when the curves do coincide).
_IDENTITIES = {
    frozenset({"smooth_l1", "huber"}): "Huber(delta) = delta * SmoothL1(beta = delta)",
    frozenset({"pseudo_huber", "barron"}): "c^2 * Barron(alpha = 1, c) = PseudoHuber(delta = c)",
}


def _in_legend_order(losses: dict) -> dict:
    """Loss label -> loss (a loss at its default constants is labelled by its registry name), in legend order."""
    return {label: losses[label] for label in label_order(losses)}


def _curves(losses: dict, r) -> dict:
    """Label -> {"rho", "psi", "weights"} arrays on ``r``, from the losses' own methods."""
    out = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for label, loss in losses.items():
            out[label] = {
                "rho": np.asarray(loss.rho(r), dtype=float),
                "psi": np.asarray(loss.psi(r), dtype=float),
                "weights": np.asarray(loss.weights(r), dtype=float),
            }
    return out


def coinciding_losses(losses: dict, r=RESIDUALS) -> list:
    """Groups of labels (each a list, in legend order) whose rho, psi and weights are equal on ``r`` (to 1e-12)."""
    losses = _in_legend_order(losses)
    curves = _curves(losses, r)
    groups: list[list[str]] = []
    for label in losses:
        for group in groups:
            other = curves[group[0]]
            if all(np.allclose(curves[label][k], other[k], rtol=1e-12, atol=1e-12, equal_nan=True) for k in other):
                group.append(label)
                break
        else:
            groups.append([label])
    return [g for g in groups if len(g) > 1]


def _describe_params(loss) -> str:
    params = loss.params()
    return ", ".join(f"{k} = {v:g}" for k, v in params.items()) if params else "no constant"


def _coincidence_notes(groups: list, losses: dict) -> list:
    notes = []
    for group in groups:
        names = " and ".join(f"{label} ({_describe_params(losses[label])})" for label in group)
        why = _IDENTITIES.get(frozenset(group))
        notes.append(f"{names} coincide exactly" + (f": {why}" if why else ""))
    return notes


def _limits(values: dict, symmetric: bool):
    """(bottom, top, clipped text) for one panel: losses far above the others run off the top, and are named."""
    peak = {}
    for label, v in values.items():
        finite = np.abs(v[np.isfinite(v)])
        peak[label] = (float(finite.max()) if finite.size else 0.0, bool(np.any(~np.isfinite(v))))
    median = float(np.median([p for p, _ in peak.values()]))
    clipped = [l for l, (p, inf) in peak.items() if inf or p > CLIP_FACTOR * median]
    kept = [peak[l][0] for l in values if l not in clipped] or [1.0]
    top = 1.1 * max(kept)
    parts = []
    for label in clipped:
        p, inf = peak[label]
        v = values[label]
        where = RESIDUALS[~np.isfinite(v)] if v.shape == RESIDUALS.shape else []
        if inf:
            at = ", ".join(f"{x:g}" for x in where[:3])
            parts.append(f"{label} (infinite at r = {at}, not drawn there)")
        else:
            parts.append(f"{label} (reaches {p:.3g})")
    note = f"clipped at {top:.3g}: " + "; ".join(parts) if parts else ""
    bottom = -top if symmetric else -0.05 * top
    return bottom, top, note


def loss_shapes_figure(losses: dict, styles: dict | None = None) -> Figure:
    """The figure: panels rho, psi and weight, one line per loss of ``losses``, one legend below.

    Parameters
    ----------
    losses : dict
        Loss label -> loss (an object with ``rho``, ``psi`` and ``weights``), such as
        :func:`robustreg.losses.registered_losses`.
    styles : dict, optional
        Loss label -> style (:func:`robustreg.report.style.style_map`); by
        default the style map of the labels of ``losses``.

    Returns
    -------
    matplotlib.figure.Figure
        Three axes (x label ``"residual r"``; y labels ``"rho(r)"``,
        ``"psi(r)"``, ``"weight psi(r)/r"``), each with one line per loss
        and no other line, labelled with the loss label; ``line.get_xdata()``
        is :data:`RESIDUALS` and ``line.get_ydata()`` the loss's values
        (non-finite values, L1's weight at 0, are NaN: a gap).
    """
    losses = _in_legend_order(losses)
    styles = style_map(losses) if styles is None else styles
    curves = _curves(losses, RESIDUALS)
    groups = coinciding_losses(losses)
    # In a group of coinciding curves, the first drawn is widest so that the next ones show on top of it.
    width = {label: 1.5 for label in losses}
    for group in groups:
        for k, label in enumerate(group):
            width[label] = 1.5 + 1.6 * (len(group) - 1 - k)
    fig = Figure(figsize=(13.0, 5.2), layout="constrained")
    axes = fig.subplots(1, len(_PANELS), squeeze=True)
    for ax, (key, ylabel, head) in zip(axes, _PANELS):
        values = {label: curves[label][key] for label in losses}
        for label in losses:
            st = styles.get(label, {"color": "#000000", "marker": "o", "linestyle": "-"})
            y = values[label]
            ax.plot(RESIDUALS, np.where(np.isfinite(y), y, np.nan), label=label, color=st["color"],
                    linestyle=st["linestyle"], marker=st["marker"], markersize=4,
                    markevery=_marker_spacing(styles, label), linewidth=width[label])
        bottom, top, note = _limits(values, symmetric=key == "psi")
        ax.set_ylim(bottom, top)
        ax.set_xlim(RESIDUALS[0], RESIDUALS[-1])
        ax.set_title(head + (f"\n{note}" if note else ""), fontsize="medium")
        ax.set_xlabel("residual r")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    title = "Shapes of the registered losses at their default constants"
    lines = [title, "r in units of the error scale for the scale-dependent losses"]
    lines += _coincidence_notes(groups, losses)
    fig.suptitle("\n".join(lines), fontsize="medium")
    _legend(fig, axes, styles, labels=list(losses))
    return fig


def draw_loss_shapes(out_dir, losses: dict, styles: dict | None = None) -> FigureRecord:
    """Draw :func:`loss_shapes_figure` into ``out_dir/figures/loss_shapes.png`` and ``.pdf``.

    Written as every report figure is (:mod:`robustreg.report.figures`:
    fixed resolution, no time stamps in the metadata, atomic writes), so
    that a rerun writes byte-identical files.  Note that
    :func:`~robustreg.report.figures.draw_figures` empties
    ``out_dir/figures`` of PNG and PDF files first: in a report folder,
    draw this figure after it.

    Returns
    -------
    FigureRecord
        ``name`` ``"loss_shapes"``, ``files`` ``[png, pdf]``, title and caption
        (which names the losses that coincide, if any).
    """
    fig = loss_shapes_figure(losses, styles)
    losses = _in_legend_order(losses)
    out = _Out(Path(out_dir), {})
    notes = _coincidence_notes(coinciding_losses(losses), losses)
    caption = ("rho, psi = rho' and the weight psi(r)/r of every registered loss at its default constants, from "
               "the losses' own methods; a loss far above the others in a panel is clipped, as the panel's title "
               "says." + "".join(f" {n}: their lines lie on top of each other." for n in notes))
    out.save(fig, NAME, "Shapes of the registered losses", caption)
    return out.figures[-1]
