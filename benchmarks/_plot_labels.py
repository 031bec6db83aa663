"""Point labels that do not overlap: a Pareto plot's neighbours (full and large, two 7-layer rows) sit a few
pixels apart, and labels all placed up-right of their point print over each other and over the markers."""

from __future__ import annotations

from matplotlib.transforms import Bbox

# (dx, dy) in points, horizontal and vertical alignment: beside the point first (right, then left, above,
# then below: a label below hangs from its point's height, so it cannot be read as the next point's), then
# further out.
CANDIDATES = ((4, 3, "left", "baseline"), (4, -3, "left", "top"), (-4, 3, "right", "baseline"),
              (-4, -3, "right", "top"), (4, 12, "left", "baseline"), (4, -12, "left", "top"),
              (-4, 12, "right", "baseline"), (-4, -12, "right", "top"))
MARKER_HALF = (10, 6)  # pixels kept free around every other point, so that no label sits between two points


def place_labels(ax, labels: list[tuple[float, float, str]], fontsize: float = 7) -> None:
    """Annotate each ``(x, y, text)`` at the first candidate offset whose box lies inside the axes and overlaps
    neither a label placed before nor another point; where no candidate does, the first is used (a label is
    never dropped). Call after the axes' limits, scales and layout are final: boxes are in display pixels."""
    renderer = ax.figure.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    centres = [ax.transData.transform((x, y)) for x, y, _ in labels]
    hx, hy = MARKER_HALF
    markers = [Bbox.from_extents(cx - hx, cy - hy, cx + hx, cy + hy) for cx, cy in centres]

    def annotate(x, y, text, candidate):
        dx, dy, ha, va = candidate
        note = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                           ha=ha, va=va)
        return note, note.get_window_extent(renderer)

    placed: list[Bbox] = []
    for i, (x, y, text) in enumerate(labels):
        obstacles = placed + markers[:i] + markers[i + 1:]
        for candidate in CANDIDATES:
            note, box = annotate(x, y, text, candidate)
            fits = inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
            if fits and not any(box.overlaps(other) for other in obstacles):
                break
            note.remove()
        else:  # crowded everywhere: the usual place, overlap and all
            note, box = annotate(x, y, text, CANDIDATES[0])
        placed.append(box)
