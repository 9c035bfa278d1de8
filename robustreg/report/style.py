"""One look per loss, in every figure: colour, marker and line style keyed by loss label.

Colours come from :data:`PALETTE`: the Okabe-Ito colours (safe for the
common colour-vision deficiencies) that stand out against a white
background, and darker replacements for the four that do not.  Every
colour has a contrast ratio of at least 3:1 against white, the WCAG 2.1
minimum for graphical objects (success criterion 1.4.11).  The article's
three losses get the three most distinct colours; a reference solver is
drawn dashed in the colour and marker of the loss it belongs with (see
:func:`overlap_note` for when their lines hide each other).  A label with
non-default tuning constants (``"huber (delta=2)"``) keeps its loss's colour
and marker with its own line style.
"""

from __future__ import annotations

import math

__all__ = ["OKABE_ITO", "PALETTE", "SOLVER_LOSS", "STYLES", "label_order", "loss_constants", "loss_style",
           "overlap_note", "style_map"]

#: Okabe & Ito (2008), "Color universal design".
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "grey": "#999999",
}

#: The colours of the figures, with their WCAG 2.1 contrast ratio against white.  Five Okabe-Ito
#: colours as they are; four replace the Okabe-Ito colours below 3:1 (yellow 1.32, orange 2.25,
#: sky blue 2.31, grey 2.85).  A darker yellow or orange would do no good: darkened, both look like
#: vermillion to a deuteranope.  The replacements were chosen so that, under normal vision and
#: simulated protanopia and deuteranopia (Machado et al. 2009), every two colours of the palette
#: differ by a CIEDE2000 distance of at least 12, the distance of the closest Okabe-Ito pair kept
#: (blue and reddish purple under protanopia); the Okabe-Ito palette with grey had 6.
PALETTE = {
    "black": OKABE_ITO["black"],                    # 21.0:1
    "blue": OKABE_ITO["blue"],                      # 5.19:1
    "vermillion": OKABE_ITO["vermillion"],          # 3.87:1
    "bluish_green": OKABE_ITO["bluish_green"],      # 3.42:1
    "reddish_purple": OKABE_ITO["reddish_purple"],  # 3.06:1
    "dark_red": "#8C0D00",                          # 9.67:1, for orange
    "indigo": "#332288",                            # 12.2:1, Paul Tol's indigo, for yellow
    "cornflower": "#668CFF",                        # 3.11:1, for sky blue
    "dark_grey": "#5E5E5E",                         # 6.48:1, for grey
}

_C = PALETTE

#: The style of every loss and reference solver, keyed by loss label.
STYLES = {
    "l2": {"color": _C["blue"], "marker": "s", "linestyle": "-"},
    "l1": {"color": _C["vermillion"], "marker": "o", "linestyle": "-"},
    "smooth_l1": {"color": _C["bluish_green"], "marker": "^", "linestyle": "-"},
    "huber": {"color": _C["reddish_purple"], "marker": "D", "linestyle": "-"},
    "pseudo_huber": {"color": _C["cornflower"], "marker": "v", "linestyle": "-"},
    "tukey": {"color": _C["dark_red"], "marker": "P", "linestyle": "-"},
    "welsch": {"color": _C["black"], "marker": "X", "linestyle": "-"},
    "cauchy": {"color": _C["indigo"], "marker": "*", "linestyle": "-"},
    "geman_mcclure": {"color": _C["dark_grey"], "marker": "h", "linestyle": "-"},
    "barron": {"color": _C["cornflower"], "marker": "p", "linestyle": "-."},
    "sklearn_ols": {"color": _C["blue"], "marker": "s", "linestyle": "--"},
    "sklearn_lad": {"color": _C["vermillion"], "marker": "o", "linestyle": "--"},
    "sklearn_huber": {"color": _C["reddish_purple"], "marker": "D", "linestyle": "--"},
    "sklearn_ransac": {"color": _C["black"], "marker": "x", "linestyle": "--"},
    "sklearn_theilsen": {"color": _C["dark_grey"], "marker": "+", "linestyle": "--"},
}

_VARIANT_LINESTYLES = [(0, (5, 2)), (0, (1, 1)), (0, (3, 1, 1, 1)), (0, (5, 1, 1, 1, 1, 1))]
_SPARE = [_C["black"], _C["dark_grey"], _C["dark_red"], _C["cornflower"], _C["indigo"]]
_SPARE_MARKERS = ["d", "<", ">", "8", "H"]


def loss_style(label: str) -> dict:
    """The style of one label on its own (variants get the first variant line style)."""
    return style_map([label])[label]


def style_map(labels) -> dict:
    """Styles for every label of a study, computed once so that each label looks the same in every figure.

    Known labels take :data:`STYLES`; a variant ``"name (k=v)"`` takes its
    base loss's colour and marker and the next free line style; an unknown
    name takes a spare colour and marker, in sorted order.
    """
    out = {}
    variants: dict[str, int] = {}
    spare = 0
    for label in sorted({str(l) for l in labels}):
        if label in STYLES:
            out[label] = dict(STYLES[label])
            continue
        base = label.split(" (", 1)[0]
        if base in STYLES:
            k = variants.get(base, 0)
            variants[base] = k + 1
            out[label] = {**STYLES[base], "linestyle": _VARIANT_LINESTYLES[k % len(_VARIANT_LINESTYLES)]}
        else:
            out[label] = {
                "color": _SPARE[spare % len(_SPARE)],
                "marker": _SPARE_MARKERS[spare % len(_SPARE_MARKERS)],
                "linestyle": _VARIANT_LINESTYLES[spare % len(_VARIANT_LINESTYLES)],
            }
            spare += 1
    return out


def label_order(labels) -> list:
    """Labels in legend order: the article's losses first, then the order of :data:`STYLES`."""
    rank = {name: i for i, name in enumerate(STYLES)}
    return sorted({str(l) for l in labels}, key=lambda l: (rank.get(l.split(" (", 1)[0], len(rank)), l))


# ------------------------------------------------------------------ overlaps
#: Reference solvers drawn in the colour and marker of a loss (dashed): solver -> (loss, what the solver is,
#: whether it computes that loss's estimator).
SOLVER_LOSS = {
    "sklearn_ols": ("l2", "least squares", True),
    "sklearn_lad": ("l1", "least absolute deviations", True),
    "sklearn_huber": ("huber", "scikit-learn's HuberRegressor, whose scale is estimated jointly with the fit",
                      False),
}


def loss_constants(runs) -> dict:
    """Loss label -> ``(loss name, its constants)``, as the records of ``runs`` hold them (gradient-descent jobs)."""
    out = {}
    if not {"loss_label", "loss", "loss_args"} <= set(runs.columns):
        return out
    gd = runs[runs["model"] == "gd"] if "model" in runs else runs
    for label, name, args in zip(gd["loss_label"], gd["loss"], gd["loss_args"]):
        if isinstance(label, str) and label not in out and isinstance(args, dict):
            out[label] = (str(name), dict(args))
    return out


def _constants(label: str, constants: dict):
    """``(loss name, tuning constants)`` of a loss label: from the records (``constants``), else those the label shows."""
    if label in constants:
        return constants[label]
    name, _, rest = str(label).partition(" (")
    params = {}
    for part in rest.rstrip(")").split(","):
        key, eq, value = part.strip().partition("=")
        if eq:
            try:
                params[key] = float(value)
            except ValueError:
                return name, None  # not a label this module can read
    return name, params


def _g(x: float) -> str:
    return f"{x:g}"


def _same_minimizer(a: str, b: str, constants: dict) -> str | None:
    """The sentence on two loss labels whose losses are multiples of one another (hence one fit), or None."""
    (na, pa), (nb, pb) = _constants(a, constants), _constants(b, constants)
    if pa is None or pb is None:
        return None
    pairs = {("smooth_l1", "huber"): ("beta", "delta", "Huber with delta = d is d times Smooth L1 with beta = d",
                                      lambda d: d),
             ("barron", "pseudo_huber"): ("c", "delta",
                                          "Pseudo-Huber with delta = d is d^2 times Barron with alpha = 1 and c = d",
                                          lambda d: d * d)}
    if (na, nb) not in pairs:
        return None
    ka, kb, identity, factor = pairs[na, nb]
    if na == "barron" and pa.get("alpha") != 1.0:
        return None
    d = pa.get(ka)
    if d is None or pb.get(kb) is None or not d > 0 or not math.isclose(d, pb[kb], rel_tol=1e-9):
        return None
    if factor(d) == 1.0:
        return (f"{a} and {b} are the same loss ({identity}, and here d = 1), so their fits coincide: where "
                "their lines overlap, the one drawn last hides the other.")
    return (f"{a} and {b} have the same minimizer ({identity}, here d = {_g(d)}): their estimates coincide "
            f"(their objectives differ by the factor {_g(factor(d))}, and with a constant step so do their "
            "paths), and where their lines overlap, the one drawn last hides the other.")


def overlap_note(labels, constants=None) -> str | None:
    """A note for a figure's caption on the lines of ``labels`` that may hide one another, or None.

    ``constants`` maps a label to its loss and tuning constants as the records hold them
    (:func:`loss_constants`); a label not in it has the constants it shows.

    * Smooth L1 and Huber: :math:`\\mathrm{Huber}_\\delta = \\delta \\cdot \\mathrm{SmoothL1}_{\\beta=\\delta}`
      (:mod:`robustreg.losses`), so a ``smooth_l1`` and a ``huber`` label with ``beta = delta`` have the
      same minimizer; at the default constants, ``beta = delta = 1``, they are the same loss.  With other
      constants they are other estimators, and nothing is said.  Likewise ``barron`` with ``alpha = 1``
      and ``pseudo_huber`` with ``delta = c`` (the two share a colour).
    * A reference solver drawn in its loss's colour and marker (:data:`SOLVER_LOSS`): ``sklearn_ols``
      and ``sklearn_lad`` compute the estimators of ``l2`` and ``l1`` directly, so their lines may
      coincide; ``sklearn_huber`` is another estimator of the Huber family (its scale is estimated
      jointly with the fit), so the note says their lines need not coincide.

    Returns
    -------
    str or None
        One sentence per such pair of labels (in legend order), joined by spaces; None when there is none.
    """
    present = label_order(labels)
    notes = []
    for i, a in enumerate(present):
        for b in present[i + 1:]:
            for x, y in ((a, b), (b, a)):
                text = _same_minimizer(x, y, constants or {})
                if text:
                    notes.append(text)
    bases = {}
    for label in present:
        bases.setdefault(label.split(" (", 1)[0], []).append(label)
    for solver, (loss, what, exact) in SOLVER_LOSS.items():
        if solver not in bases or loss not in bases:
            continue
        shown = " and ".join(bases[loss])
        if exact:
            notes.append(f"{solver} computes the {what} estimate directly and is drawn dashed in the colour and "
                         f"marker of {shown}, the same estimator: where their lines overlap, the one drawn last "
                         "hides the other.")
        else:
            notes.append(f"{solver} is drawn dashed in the colour and marker of {shown} but is another estimator "
                         f"({what}), so their lines need not coincide.")
    return " ".join(notes) or None
