"""The report's bar charts (the seed's Figures 5-9): one function, matplotlib's Agg backend."""

from __future__ import annotations

from pathlib import Path

from zflow.io import save_png


def bars(path, title: str, categories: list[str], series: dict[str, list], ylabel: str = "score",
         horizontal: bool = False) -> None:
    """Grouped bars: one group per category, one bar per series (``None`` values left out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(len(series), 1)
    width = 0.8 / n
    size = (7, max(3, 0.45 * len(categories) * max(1, n / 2))) if horizontal else \
        (max(6, 0.9 * len(categories) * max(1, n / 2)), 4)
    fig, ax = plt.subplots(figsize=size)
    for j, (name, values) in enumerate(series.items()):
        pts = [(i + j * width, v) for i, v in enumerate(values) if v is not None]
        if not pts:
            continue
        xs, ys = zip(*pts)
        (ax.barh if horizontal else ax.bar)(xs, ys, width, label=name)
    ticks = [i + width * (n - 1) / 2 for i in range(len(categories))]
    if horizontal:
        ax.set_yticks(ticks)
        ax.set_yticklabels(categories)
        ax.invert_yaxis()
        ax.set_xlabel(ylabel)
    else:
        ax.set_xticks(ticks)
        ax.set_xticklabels(categories, rotation=20, ha="right")
        ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="x" if horizontal else "y")
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_png(fig, path)
    plt.close(fig)


def accuracy_tokens(path, title: str, series: dict[str, list[tuple[float, float, str]]]) -> None:
    """Score against mean generated tokens per item: one series per task, each point a model
    (labelled), so the cost of a correct answer shows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, pts in series.items():
        if not pts:
            continue
        xs, ys, labels = zip(*pts)
        ax.plot(xs, ys, marker="o", label=name)
        for x, y, label in pts:
            ax.annotate(label, (x, y), fontsize=7, textcoords="offset points", xytext=(3, 3))
    ax.set_xlabel("mean generated tokens per item")
    ax.set_ylabel("score")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_png(fig, path)
    plt.close(fig)
