"""The run report's HTML: one file, plots as base64 PNG data URIs (matplotlib, Agg), no external resources.

Numbers shown also sit in data attributes (`data-metric`/`data-value`, `data-epoch`...) so tests and scripts
can read them back from the page itself.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any, Dict, List, Optional

from tfx_image_finetune.data_contract import MAX_IMAGE_PIXELS
from tfx_image_finetune.image_header import pixel_limit_error

SPLIT_ORDER = ("train", "selection", "test")
COLORS = {"train": "#4C72B0", "selection": "#DD8452", "test": "#55A868"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _plt().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _img(uri: str, alt: str, cls: str = "plot") -> str:
    return f'<img class="{cls}" alt="{html.escape(alt)}" src="{uri}">'


def _e(value: Any) -> str:
    return html.escape(str(value))


def _fmt(value: Optional[float], digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


# Plots ---------------------------------------------------------------------------------------------------

def data_plot(counts: Dict[str, Dict[str, int]]) -> str:
    """Images per class, one bar per split; horizontal for many classes so that the names stay readable."""
    plt = _plt()
    splits = [s for s in SPLIT_ORDER if s in counts] + [s for s in counts if s not in SPLIT_ORDER]
    classes = sorted({c for per_class in counts.values() for c in per_class})
    n, width = len(classes), 0.8 / max(len(splits), 1)
    horizontal = n > 8
    fig, ax = plt.subplots(figsize=(9, max(3, 0.28 * n + 1)) if horizontal else (9, 3.2))
    for k, split in enumerate(splits):
        positions = [i + (k - (len(splits) - 1) / 2) * width for i in range(n)]
        values = [counts[split].get(c, 0) for c in classes]
        bar = ax.barh if horizontal else ax.bar
        bar(positions, values, width, label=split, color=COLORS.get(split))
    if horizontal:
        ax.set_yticks(range(n), classes)
        ax.invert_yaxis()
        ax.set_xlabel("images")
    else:
        ax.set_xticks(range(n), classes)
        ax.set_ylabel("images")
    ax.legend(frameon=False)
    ax.set_title("Images per class and split")
    return _png(fig)


def curves_plot(history: Dict[str, Any]) -> str:
    """Loss and accuracy, train and selection, over both phases; the phase boundary and the best epoch marked."""
    plt = _plt()
    rows = history["epochs"]
    epochs = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    boundary = next((r["epoch"] - 0.5 for r in rows if r["phase"] == 2), None)
    best = history.get("best_epoch")
    for ax, metric, title in ((axes[0], "loss", "Loss"), (axes[1], "accuracy", "Accuracy")):
        for key, label, color in ((metric, "train", COLORS["train"]),
                                  (f"val_{metric}", "selection", COLORS["selection"])):
            values = [r.get(key) for r in rows]
            if any(v is not None for v in values):
                ax.plot(epochs, values, marker="o", ms=4, label=label, color=color)
        warm = history.get("warm_start") or {}
        if warm.get("used") and warm.get(f"initial_val_{metric}") is not None:
            ax.plot([0], [warm[f"initial_val_{metric}"]], marker="D", ms=7, color="#2e7d32", ls="none",
                    label="warm start (before training)")
        if boundary is not None:
            ax.axvline(boundary, color="#888", ls="--", lw=1)
            ax.text(boundary, 1.0, " phase 2 (fine-tuning)", transform=ax.get_xaxis_transform(),
                    va="top", fontsize=8, color="#555")
        if best and best in epochs:
            ax.axvline(best, color="#C44E52", lw=1, alpha=0.6)
            value = rows[epochs.index(best)].get(f"val_{metric}")
            if value is not None:
                ax.plot([best], [value], marker="*", ms=14, color="#C44E52", label=f"restored (epoch {best})")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ticks = ([0] if warm.get("used") else []) + epochs
        ax.set_xticks(ticks if len(ticks) <= 20 else ticks[:: max(1, len(ticks) // 10)])
        ax.legend(frameon=False, fontsize=8)
    return _png(fig)


def confusion_plot(matrix: List[List[int]], classes: List[str]) -> str:
    plt = _plt()
    n = len(classes)
    side = min(10, max(3.5, 0.45 * n + 2))
    fig, ax = plt.subplots(figsize=(side, side * 0.85))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), classes, rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = max(max(row) for row in matrix) or 1
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, matrix[i][j], ha="center", va="center", fontsize=9 if n < 10 else 7,
                        color="white" if matrix[i][j] > top / 2 else "#222")
    ax.set_title("Confusion matrix (test split)")
    return _png(fig)


def seconds_plot(seconds: Dict[str, float]) -> str:
    plt = _plt()
    items = sorted(seconds.items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(9, 0.3 * len(items) + 1))
    ax.barh([k for k, _ in items], [v for _, v in items], color="#8172B3")
    for i, (_, v) in enumerate(items):
        ax.text(v, i, f" {v:.1f} s", va="center", fontsize=8)
    ax.set_xlabel("seconds (latest execution; cached steps take ~0)")
    ax.set_title("Seconds per component")
    return _png(fig)


def thumbnail(image: bytes, side: int = 160, max_pixels: int = MAX_IMAGE_PIXELS) -> Optional[str]:
    """A JPEG data URI of at most side x side; None for an image that does not decode, or whose header claims
    more than `max_pixels` (never decoded: the report must not be what a bomb takes down)."""
    from PIL import Image

    if pixel_limit_error(image, max_pixels):
        return None
    try:
        img = Image.open(io.BytesIO(image))
        img.draft("RGB", (side, side))  # a JPEG decodes at 1/2..1/8 scale when that is enough
        img = img.convert("RGB")
    except Exception:
        return None
    img.thumbnail((side, side))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# Sections ------------------------------------------------------------------------------------------------

def _data_section(data: Dict[str, Any]) -> str:
    counts = data["split_counts"]
    if not counts:
        return "<p>No examples found.</p>"
    splits = [s for s in SPLIT_ORDER if s in counts]
    classes = sorted({c for per_class in counts.values() for c in per_class})
    head = "".join(f"<th>{_e(s)}</th>" for s in splits)
    body = ""
    for c in classes:
        cells = "".join(f'<td data-split="{_e(s)}" data-class="{_e(c)}" data-count="{counts[s].get(c, 0)}">'
                        f'{counts[s].get(c, 0)}</td>' for s in splits)
        body += f"<tr><th>{_e(c)}</th>{cells}</tr>"
    totals = "".join(f"<td><b>{sum(counts[s].values())}</b></td>" for s in splits)
    out = [_img(data_plot(counts), "images per class and split"),
           f'<table class="num"><tr><th>class</th>{head}</tr>{body}<tr><th>total</th>{totals}</tr></table>']
    train = counts.get("train", {})
    if train and min(train.values()) > 0:
        ratio = max(train.values()) / min(train.values())
        weights = ((data.get("history") or {}).get("class_weight")) or None
        note = (f"class weights {', '.join(f'{k}: {v:.2f}' for k, v in weights.items())} (--class-weight balanced)"
                if weights else "no class weights (--class-weight none)")
        cls = "warn" if ratio >= 1.5 else "ok"
        out.append(f'<p class="{cls}" data-imbalance="{ratio:.4f}">Class imbalance in train: largest / smallest '
                   f"class = {ratio:.2f}; {note}.</p>")
    ingest = data.get("ingest")
    if ingest is not None:
        skipped = ingest.get("skipped", [])
        out.append(f'<p data-skipped="{len(skipped)}">{ingest.get("valid_images", "?")} valid images read, '
                   f"{len(skipped)} file(s) skipped.</p>")
        if skipped:
            rows = "".join(f"<tr><td>{_e(r['path'])}</td><td>{_e(r['reason'])}</td></tr>" for r in skipped[:200])
            more = f"<p>... and {len(skipped) - 200} more (see report.json)</p>" if len(skipped) > 200 else ""
            out.append(f"<table><tr><th>skipped file</th><th>reason</th></tr>{rows}</table>{more}")
        out.append(_duplicates(ingest.get("duplicates")))
    return "\n".join(out)


_DUPLICATE_KINDS = (("kept_out", "copy of a training image, kept out of its split"),
                    ("conflicting_labels", "the same image under another label (kept)"),
                    ("within_split", "copy within its split (kept)"),
                    ("across_splits", "copy between selection and test (kept)"))


def _duplicates(findings: Optional[Dict[str, Any]]) -> str:
    """Counts and the listed pairs of ExampleGen's duplicate search (file names escaped: they are user input)."""
    if not findings:
        return ""
    within = sum((findings.get("within_split") or {}).values())
    kept_out, conflicts = findings.get("kept_out", 0), findings.get("conflicting_labels", 0)
    cls = "warn" if kept_out or conflicts else "ok"
    out = [f'<p class="{cls}" data-duplicates-within="{within}" data-duplicates-kept-out="{kept_out}" '
           f'data-duplicates-conflicting="{conflicts}">Duplicates ({_e(findings.get("near_duplicate_hash", ""))} '
           f"or identical bytes): {within} within a split (kept), {kept_out} copies of training images kept out "
           f"of selection/test, {findings.get('across_splits', 0)} between selection and test, {conflicts} "
           f"conflicting labels.</p>"]
    pairs = findings.get("pairs") or {}
    rows = "".join(f'<tr data-duplicate="{_e(kind)}"><td>{_e(what)}</td><td>{_e(p["path"])} ({_e(p["label"])})</td>'
                   f'<td>{_e(p["copy_of"])} ({_e(p["copy_of_label"])})</td><td>{_e(p["match"])}</td></tr>'
                   for kind, what in _DUPLICATE_KINDS for p in pairs.get(kind, []))
    if rows:
        out.append(f"<table><tr><th>finding</th><th>file (label)</th><th>copy of (label)</th><th>match</th></tr>"
                   f"{rows}</table><p>At most {_e(findings.get('listed_max', ''))} pairs of each kind are listed "
                   "(report.json has the same lists).</p>")
    return "\n".join(out)


def _strategy_section(history: Optional[Dict[str, Any]]) -> str:
    decision = (history or {}).get("strategy")
    if not decision:
        return "<p>The Trainer recorded no strategy decision.</p>"
    probe = decision.get("probe_accuracy")
    rows = [("strategy used", decision.get("used")), ("chosen", decision.get("chosen_by")),
            ("training images", decision.get("train_images")),
            ("linear-probe accuracy (frozen backbone)", _fmt(probe, 3) if probe is not None else "not measured"),
            ("chance accuracy", _fmt(decision.get("chance"), 3)),
            ("data size", decision.get("size")), ("similarity to ImageNet", decision.get("similarity")),
            ("the chart recommends", decision.get("recommended")),
            ("phase 2 unfreezes", decision.get("unfreeze"))]
    cells = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows if v is not None)
    return (f'<table data-strategy="{_e(decision.get("used"))}" data-recommended="{_e(decision.get("recommended"))}">'
            f'{cells}</table><p>{_e(decision.get("reason", ""))}</p>')


def kept_weights(history: Dict[str, Any]) -> str:
    """Which epoch's weights the model has, and whether the selection figures after phase 1 are held out."""
    epoch = history.get("best_epoch")
    if history.get("selection") != "last":
        return f"Restored weights: epoch {epoch} (lowest selection loss {_fmt(history.get('best_val_loss'))})"
    text = f"Kept weights: the last epoch ({epoch})"
    if history.get("refit"):
        text += (" after the selection split joined the training once it chose the head's penalty (its figures "
                 "after phase 1 are not held out; the Evaluator's test split is)")
    return text


def _training_section(history: Optional[Dict[str, Any]]) -> str:
    if not history or not history.get("epochs"):
        return "<p>No training history (history.json) found.</p>"
    keys = ["loss", "accuracy", "val_loss", "val_accuracy"]
    rows = ""
    for r in history["epochs"]:
        attrs = " ".join(f'data-{k.replace("_", "-")}="{r[k]!r}"' for k in keys if k in r)
        best = ' class="best"' if r["epoch"] == history.get("best_epoch") else ""
        cells = "".join(f"<td>{_fmt(r.get(k))}</td>" for k in keys)
        rows += (f'<tr{best} data-epoch="{r["epoch"]}" data-phase="{r["phase"]}" {attrs}><td>{r["epoch"]}</td>'
                 f'<td>{r["phase"]}</td>{cells}<td>{r.get("trainable_params", "")}</td></tr>')
    warm = history.get("warm_start")
    warm_html = f'<p data-warm-start="{_e(warm.get("used"))}">Start: {_e(warm.get("note"))}</p>' if warm else ""
    return (_img(curves_plot(history), "learning curves")
            + f'<p data-best-epoch="{history.get("best_epoch")}">{_e(kept_weights(history))}; '
              f'weights: {_e(history.get("weights"))}.</p>'
            + warm_html
            + '<details><summary>Every epoch</summary><table class="num"><tr><th>epoch</th><th>phase</th><th>loss</th>'
              '<th>accuracy</th><th>selection loss</th><th>selection accuracy</th><th>trainable params</th></tr>'
            + rows + "</table></details>")


def _evaluation_section(data: Dict[str, Any]) -> str:
    ev = data.get("evaluation")
    if not ev:
        return "<p>The Evaluator did not run.</p>"
    blessed = data["blessed"]
    verdict = (f'<div class="verdict {"ok" if blessed else "bad"}" data-blessed="{str(blessed).lower()}">'
               f'{"BLESSED" if blessed else "NOT BLESSED"}</div>')
    base = ev.get("baseline_metrics") or {}
    rows = ""
    for name, value in sorted(ev["metrics"].items()):
        if name.endswith("_diff"):
            continue  # TFMA's change against the baseline: shown in its metric's row
        threshold = ev["thresholds"].get(name, {})
        lower = threshold.get("lower_bound")
        shown_lower = "" if lower is None else f"&ge; {lower:g}"
        drop = threshold.get("max_drop")
        if drop is not None and name in base:
            shown_lower += f" and &ge; baseline &minus; {drop:g}"
        # pass/fail as TFMA's ValidationResult says (never re-judged here)
        mark = "" if lower is None or ev.get("validation_ok") is None else (
            ' <span class="bad">below</span>' if name in ev.get("failed", ()) else ' <span class="ok">pass</span>')
        if drop is not None and f"{name}_diff" in ev.get("failed", ()):
            mark += ' <span class="bad">dropped</span>'
        digits = 0 if name == "example_count" else 4
        interval = (ev.get("intervals") or {}).get(name)
        ci_cell = (f'<td data-ci="{_e(name)}" data-lower="{interval[0]!r}" data-upper="{interval[1]!r}">'
                   f"{interval[0]:.{digits}f}&ndash;{interval[1]:.{digits}f}</td>" if interval else "<td></td>")
        diff = ev["metrics"].get(f"{name}_diff")
        diff_cell = (f'<td data-metric="{_e(name)}_diff" data-value="{diff!r}">{diff:+.{digits}f}</td>'
                     if diff is not None else "<td></td>")
        rows += (f'<tr><th>{_e(name)}</th><td data-metric="{_e(name)}" data-value="{value!r}">{_fmt(value, digits)}'
                 f"</td>{ci_cell}<td>{shown_lower}{mark}</td><td>{_fmt(base.get(name), digits) if name in base else ''}</td>"
                 f"{diff_cell}</tr>")
    failures = "".join(f"<li>{_e(f)}</li>" for f in ev.get("failures", []))
    baseline = data.get("baseline") or "n/a"
    warnings = "".join(f'<p class="warn" data-verdict-warning="1">WARNING: {_e(w)}</p>'
                       for w in data.get("verdict_warnings") or [])
    return (verdict + '<table class="num"><tr><th>metric (test split)</th><th>value</th><th>95% CI</th>'
            f'<th>threshold</th><th>baseline</th><th>change</th></tr>{rows}</table>'
            "<p>95% CI: TFMA's jackknife interval over the test split; the threshold is judged on the value.</p>"
            + warnings + f"<p>Baseline: {_e(baseline)}</p>"
            + (f"<p>TFMA validation failures:</p><ul>{failures}</ul>" if failures else ""))


def _test_section(data: Dict[str, Any]) -> str:
    test, history = data.get("test"), data.get("history") or {}
    if not test:
        return "<p>No test predictions (no trained model or no test split).</p>"
    classes = history["classes"]
    note = (f"<p>The gallery looked at the first {test['examples']} of {test['total']} test examples.</p>"
            if test["examples"] < test["total"] else "")
    rows = "".join(
        f'<tr data-class="{_e(r["class"])}" data-precision="{r["precision"]!r}" data-recall="{r["recall"]!r}">'
        f'<th>{_e(r["class"])}</th><td>{_fmt(r["precision"], 3)}</td><td>{_fmt(r["recall"], 3)}</td>'
        f'<td>{r["support"]}</td></tr>' for r in test["per_class"])
    wrong = _gallery(test["wrong"]) or "<p>No test image was misclassified.</p>"
    right = _gallery(test.get("right", []))
    explained = test.get("explained")
    how = ("<p>Beside each image: what drove its <b>predicted</b> class, as the model saw it (integrated "
           "gradients; bright: the pixels that raised that class's probability most).</p>" if explained == ""
           else f"<p>No heat maps: {_e(explained)}.</p>" if explained else "")
    return (note + '<div class="row">' + _img(confusion_plot(test["matrix"], classes), "confusion matrix",
                                           "plot cm" if len(classes) <= 12 else "plot")
            + f'<table class="num" data-matrix="{_e(test["matrix"])}"><tr><th>class</th><th>precision</th>'
              f'<th>recall</th><th>test images</th></tr>{rows}</table></div>'
            + "<h3>Most confidently wrong test images</h3>" + how + wrong
            + ("<h3>Most confidently right test images, per class</h3>" + right if right else ""))


def _gallery(records: List[Dict[str, Any]]) -> str:
    """A figure per test image: the image, its heat map overlay when it has one, true and predicted class."""
    figures = ""
    for w in records:
        uri = thumbnail(w["image"])
        picture = _img(uri, w["file"], "thumb") if uri else "<div class='thumb'>(not decodable here)</div>"
        overlay = w.get("overlay")
        if overlay:
            picture += _img("data:image/png;base64," + base64.b64encode(overlay).decode("ascii"),
                            f"what drove {w['predicted']} in {w['file']}", "thumb overlay")
        figures += (f'<figure class="{"pair" if overlay else ""}" data-true="{_e(w["true"])}" '
                    f'data-predicted="{_e(w["predicted"])}" data-explained="{str(bool(overlay)).lower()}">{picture}'
                    f'<figcaption><b>{_e(w["predicted"])}</b> {w["probability"]:.1%}<br>true: {_e(w["true"])}'
                    f'<br><small>{_e(w["file"])}</small></figcaption></figure>')
    return f'<div class="gallery">{figures}</div>' if figures else ""


def _image_health(data: Dict[str, Any]) -> str:
    from tfx_image_finetune.report.image_health import section  # it imports this module's helpers

    return section(data)


def _drift_section(result: Optional[Dict[str, Any]]) -> str:
    """This run's training data against the replaced model's (report/drift.py): a row per compared distribution."""
    if not result:
        return "<p>Not compared.</p>"
    if not result["baseline"]:
        return f'<p data-drift-baseline="">Not compared: {_e(result["why"])}.</p>'
    name = {"linf": "L-infinity", "js": "Jensen-Shannon"}[result["comparator"]]
    rows = "".join(
        f'<tr data-drift="{_e(f["what"])}" data-drifted="{str(f["drifted"]).lower()}" data-distance="{f["distance"]!r}">'
        f'<th>{_e(f["what"])}</th><td>{_fmt(f["distance"], 3)}</td>'
        f'<td class="{"bad" if f["drifted"] else "ok"}">{"DRIFT" if f["drifted"] else "ok"}</td>'
        f'<td>{_e(f["detail"])}</td></tr>' for f in result["findings"])
    drifted = sum(f["drifted"] for f in result["findings"])
    verdict = (f'<p class="warn">{drifted} distribution(s) moved further than {result["threshold"]} ({name}) from '
               "the training data of the model this run would replace.</p>" if drifted
               else f'<p class="ok">No distribution moved further than {result["threshold"]} ({name}).</p>')
    return (f'<p data-drift-baseline="{_e(result["baseline"])}">Train split against the training data of '
            f'<code>{_e(result["baseline"])}</code> (label distribution: TFDV\'s drift comparator).</p>' + verdict
            + f'<table><tr><th>distribution</th><th>{name}</th><th></th><th>before -&gt; now</th></tr>{rows}</table>')


def _push_section(data: Dict[str, Any]) -> str:
    push = data["push"]
    if push["pushed"]:
        return (f'<p data-pushed-version="{_e(push["version"])}">Serving version <b>{_e(push["version"])}</b> at '
                f'<code>{_e(push["destination"])}</code>.</p>')
    return f'<p data-pushed-version="">Nothing pushed: {_e(push["why"])}.</p>'


def _tflite_section(data: Dict[str, Any]) -> str:
    """--tflite: the SavedModel and the TFLite model side by side on the Evaluator's split, and the verdict."""
    lite = data.get("tflite")
    if not lite:
        return "<p>No TFLite export (<code>--tflite none</code>).</p>"
    mode = lite.get("export", {}).get("mode", "")
    rows = [("accuracy", _fmt(lite["saved_model_accuracy"]), _fmt(lite["tflite_accuracy"])),
            ("top-1 agreement with the SavedModel", "", f"{100 * lite['agreement']:.1f}%"),
            ("file size", f"{lite['saved_model_bytes'] / 1e6:.2f} MB", f"{lite['tflite_bytes'] / 1e6:.2f} MB"),
            ("latency per image, 1 CPU thread", f"{lite['saved_model_ms_per_image']:.1f} ms",
             f"{lite['tflite_ms_per_image']:.1f} ms")]
    table = "".join(f"<tr><td>{_e(name)}</td><td>{_e(a)}</td><td>{_e(b)}</td></tr>" for name, a, b in rows)
    pushed = data["push"].get("tflite") == "pushed"
    verdict = ("pushed with the version" if pushed else "passed; not pushed" if lite["passed"] else "NOT pushed")
    return (f'<table class="num" data-tflite-passed="{int(bool(lite["passed"]))}"><tr><th></th><th>SavedModel</th>'
            f"<th>TFLite ({_e(mode)})</th></tr>{table}</table>"
            f'<p class="{"ok" if lite["passed"] else "bad"}">TFLite {_e(verdict)}: {_e(lite["reason"])}. '
            f"{_e(lite['examples'])} test examples; the SavedModel's latency includes decoding the image.</p>")


CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;background:#f4f5f7;color:#222}
header{background:#1f2d3d;color:#fff;padding:18px 32px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#c8d1dc;font-size:13px}
main{max-width:1120px;margin:0 auto;padding:16px 24px}
section{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.08);padding:8px 20px 16px;margin:16px 0}
h2{font-size:17px;border-bottom:1px solid #eee;padding-bottom:6px}h3{font-size:14px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{padding:4px 10px;border-bottom:1px solid #eee;
text-align:left}table.num td{text-align:right}tr.best td{background:#fdf1d8}
.plot{max-width:100%;display:block;margin:6px 0}.cm{max-width:480px}
.row{display:flex;gap:24px;align-items:flex-start;flex-wrap:wrap}
.verdict{display:inline-block;padding:6px 14px;border-radius:6px;font-weight:700;color:#fff}
.ok{color:#2e7d32}.bad{color:#c62828}.verdict.ok{background:#2e7d32;color:#fff}.verdict.bad{background:#c62828;color:#fff}
.warn{color:#b26a00}.gallery{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;width:170px;font-size:12px}figure.pair{width:336px}
.overlay{margin-left:8px}.thumb{width:160px;height:160px;object-fit:contain;background:#eee;
border-radius:4px}code{font-size:12px}
"""

SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.documentElement.setAttribute('data-images-loaded', ok + '/' + imgs.length);
});
"""


def render(data: Dict[str, Any]) -> str:
    history = data.get("history")
    blessed = "blessed" if data["blessed"] else "not blessed"
    sections = [
        ("Verdict", _evaluation_section(data)),
        ("Pushed model", _push_section(data)),
        ("TFLite", _tflite_section(data)),
        ("Data", _data_section(data)),
        ("Image health", _image_health(data)),
        ("Data drift", _drift_section(data.get("drift"))),
        ("Strategy", _strategy_section(history)),
        ("Training", _training_section(history)),
        ("Test split: per class", _test_section(data)),
        ("Seconds per component", _img(seconds_plot(data["seconds"]), "seconds per component")
         if data.get("seconds") else "<p>No executions recorded.</p>"),
    ]
    body = "".join(f'<section id="{title.split(":")[0].lower().replace(" ", "-")}"><h2>{_e(title)}</h2>{content}'
                   f"</section>" for title, content in sections)
    return (f'<!DOCTYPE html><html lang="en" data-run-id="{_e(data["run_id"])}"><head><meta charset="utf-8">'
            f"<title>Run report {_e(data['run_id'])}</title><style>{CSS}</style><script>{SCRIPT}</script></head>"
            f"<body><header><h1>tfx-image-finetune run report: {blessed}</h1>"
            f"<p>run {_e(data['run_id'])} &middot; {_e(data['output_dir'])}</p></header><main>{body}</main>"
            "</body></html>")
