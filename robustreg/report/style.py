"""One look per loss, in every figure: colour, marker and line style keyed by loss label.

Colours come from the Okabe-Ito palette (safe for the common colour-vision
deficiencies).  The article's three losses get the three most distinct
colours; a reference solver shares the colour of the loss it minimizes
exactly and is drawn dashed.  A label with non-default tuning constants
(``"huber (delta=2)"``) keeps its loss's colour and marker with its own line
style.
"""

from __future__ import annotations

__all__ = ["OKABE_ITO", "STYLES", "label_order", "loss_style", "style_map"]

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

_C = OKABE_ITO

#: The style of every loss and reference solver, keyed by loss label.
STYLES = {
    "l2": {"color": _C["blue"], "marker": "s", "linestyle": "-"},
    "l1": {"color": _C["vermillion"], "marker": "o", "linestyle": "-"},
    "smooth_l1": {"color": _C["bluish_green"], "marker": "^", "linestyle": "-"},
    "huber": {"color": _C["reddish_purple"], "marker": "D", "linestyle": "-"},
    "pseudo_huber": {"color": _C["sky_blue"], "marker": "v", "linestyle": "-"},
    "tukey": {"color": _C["orange"], "marker": "P", "linestyle": "-"},
    "welsch": {"color": _C["black"], "marker": "X", "linestyle": "-"},
    "cauchy": {"color": _C["yellow"], "marker": "*", "linestyle": "-"},
    "geman_mcclure": {"color": _C["grey"], "marker": "h", "linestyle": "-"},
    "barron": {"color": _C["sky_blue"], "marker": "p", "linestyle": "-."},
    "sklearn_ols": {"color": _C["blue"], "marker": "s", "linestyle": "--"},
    "sklearn_lad": {"color": _C["vermillion"], "marker": "o", "linestyle": "--"},
    "sklearn_huber": {"color": _C["reddish_purple"], "marker": "D", "linestyle": "--"},
    "sklearn_ransac": {"color": _C["black"], "marker": "x", "linestyle": "--"},
    "sklearn_theilsen": {"color": _C["grey"], "marker": "+", "linestyle": "--"},
}

_VARIANT_LINESTYLES = [(0, (5, 2)), (0, (1, 1)), (0, (3, 1, 1, 1)), (0, (5, 1, 1, 1, 1, 1))]
_SPARE = [_C["black"], _C["grey"], _C["orange"], _C["sky_blue"], _C["yellow"]]
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
