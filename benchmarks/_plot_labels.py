"""Point labels that do not overlap: a Pareto plot's neighbours (full and large, two 7-layer rows) sit a few
pixels apart, and labels all placed up-right of their point print over each other and over the markers."""

from __future__ import annotations

from matplotlib.text import Text
from matplotlib.transforms import Bbox

# (dx, dy) in points, horizontal and vertical alignment: beside the point first (right, then left, above,
# then below: a label below hangs from its point's height, so it cannot be read as the next point's), then
# further out.
CANDIDATES = ((4, 3, "left", "baseline"), (4, -3, "left", "top"), (-4, 3, "right", "baseline"),
              (-4, -3, "right", "top"), (4, 12, "left", "baseline"), (4, -12, "left", "top"),
              (-4, 12, "right", "baseline"), (-4, -12, "right", "top"))
# Where a cluster (one size, several poolings) leaves no room beside a point: further out, joined to the point
# by a thin line, since a label that far could otherwise be read as a neighbour's.
FAR = tuple((dx, dy, "left" if dx > 0 else "right", "center")
            for dy in (0, 12, -12, 24, -24, 36, -36) for dx in (28, -28))
LEADER = {"arrowstyle": "-", "color": "0.45", "lw": 0.6, "linestyle": ":", "shrinkA": 0, "shrinkB": 3}  # dotted: not a curve
MARKER_HALF = (10, 6)  # pixels kept free around every other point, so that no label sits between two points


def _distance(box: Bbox, x: float, y: float) -> float:
    dx = max(box.x0 - x, 0, x - box.x1)
    dy = max(box.y0 - y, 0, y - box.y1)
    return (dx * dx + dy * dy) ** 0.5


def place_labels(ax, labels: list[tuple[float, float, str]], fontsize: float = 7) -> None:
    """Annotate each ``(x, y, text)`` at the first candidate offset whose box lies inside the axes and overlaps
    neither a label placed before nor another point; a label without a leader line must also lie nearer its own
    point than any other, or it reads as a neighbour's. Where no candidate does, the first is used (a label is
    never dropped). Call after the axes' limits, scales and layout are final: boxes are in display pixels."""
    renderer = ax.figure.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    centres = [ax.transData.transform((x, y)) for x, y, _ in labels]
    hx, hy = MARKER_HALF
    markers = [Bbox.from_extents(cx - hx, cy - hy, cx + hx, cy + hy) for cx, cy in centres]

    def annotate(x, y, text, candidate):
        dx, dy, ha, va = candidate
        note = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                           ha=ha, va=va, arrowprops=LEADER if candidate in FAR else None)
        note.update_positions(renderer)
        return note, Text.get_window_extent(note, renderer)  # the text alone: a leader line may cross points

    placed: list[Bbox] = []
    for i, (x, y, text) in enumerate(labels):
        obstacles = placed + markers[:i] + markers[i + 1:]
        for candidate in CANDIDATES + FAR:
            note, box = annotate(x, y, text, candidate)
            fits = inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
            own = _distance(box, *centres[i])
            clear = candidate in FAR or all(own < _distance(box, *c) for j, c in enumerate(centres) if j != i)
            if fits and clear and not any(box.overlaps(other) for other in obstacles):
                break
            note.remove()
        else:  # crowded everywhere: the usual place, overlap and all
            note, box = annotate(x, y, text, CANDIDATES[0])
        placed.append(box)
