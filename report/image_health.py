"""The report's image health section: what ExampleGen measured of the images themselves (ingest report's
`image_stats`, components/image_folder_example_gen/image_stats.py), per split and class, as small plots and a
table. Numbers also sit in data attributes (`data-health-*`) for tests and scripts."""

from __future__ import annotations

from typing import Any, Dict, List

from tfx_image_finetune.report.render import SPLIT_ORDER, _e, _img, _plt, _png

LABELS = {"width": "width (px)", "height": "height (px)", "aspect": "aspect (w / h)",
          "brightness": "brightness (mean luma)", "contrast": "contrast (luma std)"}
MAX_LINES = 8  # more classes than this: one line per split instead of one per class


def _edges(name: str) -> List[float]:
    from tfx_image_finetune.components.image_folder_example_gen.image_stats import EDGES

    return EDGES[name]


def health_plot(stats: Dict[str, Dict[str, Any]]) -> str:
    """One small histogram per property: a line per class (all splits), or per split when classes are many."""
    plt = _plt()
    classes = sorted({c for per_class in stats.values() for c in per_class})
    by_class = len(classes) <= MAX_LINES
    groups = ({c: [stats[s][c] for s in stats if c in stats[s]] for c in classes} if by_class
              else {s: list(stats[s].values()) for s in stats})
    fig, axes = plt.subplots(1, len(LABELS), figsize=(12, 2.4))
    for ax, (name, label) in zip(axes, LABELS.items()):
        edges = _edges(name)
        for group, summaries in groups.items():
            counts = [sum(h) for h in zip(*(s["histogram"][name] for s in summaries))]
            total = sum(counts) or 1
            ax.step(range(len(edges)), [c / total for c in counts], where="post", label=str(group))
        ticks = range(0, len(edges), max(1, len(edges) // 4))
        ax.set_xticks(list(ticks), [f"{edges[i]:g}" for i in ticks])
        ax.set_title(label, fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("share of images", fontsize=8)
    axes[-1].legend(fontsize=7, frameon=False, loc="upper right")
    fig.tight_layout()
    return _png(fig)


def _counts(named: Dict[str, int]) -> str:
    return ", ".join(f"{_e(name)} {n}" for name, n in named.items())


def section(data: Dict[str, Any]) -> str:
    stats = (data.get("ingest") or {}).get("image_stats")
    if not stats:
        return "<p>No image statistics (a run from before they were measured).</p>"
    rows = ""
    for split in [s for s in SPLIT_ORDER if s in stats] + [s for s in stats if s not in SPLIT_ORDER]:
        for cls, s in stats[split].items():
            mean, std = s["mean"], s["std"]
            rows += (f'<tr data-health-split="{_e(split)}" data-health-class="{_e(cls)}" '
                     f'data-health-brightness="{mean["brightness"]!r}" data-health-width="{mean["width"]!r}">'
                     f'<th>{_e(split)}</th><th>{_e(cls)}</th><td>{s["count"]}</td><td>{_counts(s["format"])}</td>'
                     f'<td>{_counts(s["colour"])}</td><td>{mean["width"]:.0f} x {mean["height"]:.0f}</td>'
                     f'<td>{mean["aspect"]:.2f}</td><td>{mean["brightness"]:.0f} &plusmn; {std["brightness"]:.0f}</td>'
                     f'<td>{mean["contrast"]:.0f} &plusmn; {std["contrast"]:.0f}</td></tr>')
    return (_img(health_plot(stats), "image sizes, brightness and contrast")
            + '<table class="num"><tr><th>split</th><th>class</th><th>images</th><th>format</th><th>colour</th>'
              '<th>mean size</th><th>aspect</th><th>brightness</th><th>contrast</th></tr>' + rows + "</table>"
            + "<p>Brightness: mean luma (0-255); contrast: its standard deviation within an image; "
              "&plusmn;: across the images.</p>")
