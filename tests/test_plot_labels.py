"""Pareto-plot labels: neighbours a few pixels apart get boxes that overlap neither each other nor a point."""

from __future__ import annotations


import pytest


@pytest.fixture(scope="module")
def plot_labels(import_benchmark):
    return import_benchmark("_plot_labels")


def _label_boxes(ax):
    renderer = ax.figure.canvas.get_renderer()
    return [t.get_window_extent(renderer) for t in ax.texts]


def _labelled_plot(plot_labels, points, figsize):
    """The points drawn on the replication plot's axes (x 20-140 million parameters, y 50-82), then labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize)
    ax.plot([p[0] for p in points], [p[1] for p in points], "o")
    ax.set_xlim(20, 140)
    ax.set_ylim(50, 82)
    fig.tight_layout()
    plot_labels.place_labels(ax, points)
    return fig, ax, plt


def test_close_neighbours_get_separate_labels(plot_labels):
    points = [(127.5, 77.22, "l3prune-large"), (134.5, 77.14, "full"), (49.5, 70.45, "last-drop80"),
              (49.5, 71.06, "last-drop80-fullft"), (53.0, 69.89, "l3prune-small"), (53.0, 70.97, "small-fullft")]
    fig, ax, plt = _labelled_plot(plot_labels, points, (6, 4))
    boxes = _label_boxes(ax)
    assert [t.get_text() for t in ax.texts] == [p[2] for p in points]  # every label, in order, none dropped
    for i, a in enumerate(boxes):
        assert not any(a.overlaps(b) for b in boxes[i + 1:]), ax.texts[i].get_text()
    centres = [ax.transData.transform(p[:2]) for p in points]
    for i, box in enumerate(boxes):  # no label covers another point's marker
        for j, (cx, cy) in enumerate(centres):
            if i != j:
                assert not box.contains(cx, cy), (ax.texts[i].get_text(), points[j][2])
    plt.close(fig)


def test_the_naive_placement_overlaps_on_the_same_points():
    """The case above is a real one: every label up-right of its point prints two of them over each other."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.set_xlim(20, 140)
    ax.set_ylim(50, 82)
    fig.tight_layout()
    for x, y, text in [(49.5, 70.45, "last-drop80"), (49.5, 71.06, "last-drop80-fullft")]:
        ax.annotate(text, (x, y), xytext=(4, 3), textcoords="offset points", fontsize=7)
    a, b = _label_boxes(ax)
    assert a.overlaps(b)
    plt.close(fig)


def test_a_label_in_a_cluster_is_nearest_its_own_point_or_joined_to_it(plot_labels):
    """SmolLM2's `small` with its poolings: five points at one size, a few pixels apart. A label placed beside
    the wrong one reads as that point's, so it either lies nearer its own point than any other or has a leader."""
    points = [(53.0, 69.95, "l3prune-small"), (53.0, 70.97, "small +fullft"), (53.0, 70.39, "small +wmean_instr"),
              (53.0, 69.25, "small +mean"), (49.5, 70.45, "last-drop80"), (49.5, 71.06, "drop80 +fullft")]
    fig, ax, plt = _labelled_plot(plot_labels, points, (7, 3.5))
    renderer = fig.canvas.get_renderer()
    centres = [ax.transData.transform(p[:2]) for p in points]
    leaders = 0
    for i, note in enumerate(ax.texts):
        if note.arrow_patch is not None:
            leaders += 1
            continue
        box = note.get_window_extent(renderer)
        own = plot_labels._distance(box, *centres[i])
        assert all(own < plot_labels._distance(box, *c) for j, c in enumerate(centres) if j != i), note.get_text()
    assert leaders > 0  # the case is crowded enough to need them: the check above is not vacuous
    plt.close(fig)


def test_a_crowded_label_is_kept_not_dropped(plot_labels):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1.5))
    points = [(1.0, 1.0, f"label-{i}") for i in range(12)]  # one spot: nothing fits anywhere
    ax.set_xlim(0, 2)
    ax.set_ylim(0, 2)
    plot_labels.place_labels(ax, points)
    assert len(ax.texts) == 12
    plt.close(fig)
