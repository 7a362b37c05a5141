"""The evaluation report folder: ``summary.txt``, ``summary.json`` and PNG plots (matplotlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from . import metrics
from .protocols import TRADEOFF_GRID, Evaluation


def summary_text(ev: Evaluation) -> str:
    """The human-readable summary printed by ``evaluate`` and saved as ``summary.txt``."""
    lines = [
        f"{ev.folder}: {ev.photos} photos of {ev.people} people, "
        f"{ev.photos_without_face} without a detected face",
        f"model {ev.model}; embeddings "
        + ("from cache" if ev.embeddings_cached else f"computed in {ev.embed_seconds:.0f}s"),
    ]
    v = ev.verification
    if v is not None:
        k = v.kfold
        lines += [
            "",
            f"Verification ({v.pairs} pairs, {v.source}; {v.no_face_pairs} with a photo lacking a face)",
            f"  {f'accuracy ({len(k.fold_accuracy)}-fold)':<22}{k.accuracy * 100:.2f}% ± {k.accuracy_std * 100:.2f}",
            f"  ROC AUC               {v.auc:.5f}",
            *(f"  {f'TAR @ FAR={far:g}':<22}{tar * 100:.2f}%" for far, tar in v.tar_at_far.items()),
            f"  best threshold        {v.threshold:.3f} (cosine distance)",
        ]
    i = ev.identification
    if i is not None:
        at = i.result.at(i.threshold)
        stranger_kind = (
            "simulated: each query with its own person left out"
            if i.strangers_simulated
            else "one-photo people"
        )
        lines += [
            "",
            f"Open-set identification ({i.enrolled_people} people enrolled with "
            f"{i.enrolled_photos} photos; {i.known_queries} known queries; "
            f"{i.stranger_queries} stranger queries, {stranger_kind})",
            f"  rank-1 accuracy            {i.result.rank1 * 100:.2f}%",
            f"  threshold                  {i.threshold:.3f} (largest with stranger false-accept <= {i.far_target:g})",
            f"  known correctly named      {at['known_correct'] * 100:.2f}%",
            f"  known wrongly named        {at['known_wrong'] * 100:.2f}%",
            f"  strangers rejected         {at['stranger_rejected'] * 100:.2f}%",
            f"  stranger false-accept      {at['stranger_false_accept'] * 100:.2f}%",
            "",
            f"  {'threshold':>9} {'known correct':>14} {'known wrong':>12} {'stranger FA':>12}",
        ]
        for row in i.result.tradeoff(TRADEOFF_GRID):
            lines.append(
                f"  {row['threshold']:>9.2f} {row['known_correct'] * 100:>13.2f}% "
                f"{row['known_wrong'] * 100:>11.2f}% {row['stranger_false_accept'] * 100:>11.2f}%"
            )
    if ev.by_gallery_size:
        lines += ["", *gallery_size_lines(ev)]
    return "\n".join(lines) + "\n"


def gallery_size_lines(ev: Evaluation) -> list[str]:
    """The ``--gallery-sizes`` table: the default rule beside the fixed threshold, per size."""
    rows = [g.to_dict() for g in ev.by_gallery_size]
    first = rows[0]
    fixed = first["fixed"]["threshold"]
    lines = [
        "Open-set by gallery size (random sub-galleries of people with photos to enroll and "
        "query; strangers: every photo of everyone not drawn; "
        f"target stranger false-accept <= {first['far_target']:g})",
        f"  {'people':>6} {'draws':>5} {'threshold':>9} {'stranger FA':>11} {'worst draw':>10} "
        f"{'known named':>11} | {f'at {fixed:g}: FA':>14} {'known named':>11}",
    ]
    for r in rows:
        rule, fx = r["rule"], r["fixed"]
        lines.append(
            f"  {r['people']:>6} {r['draws']:>5} {r['threshold']:>9.3f} "
            f"{rule['stranger_false_accept'] * 100:>10.2f}% "
            f"{rule['stranger_false_accept_worst'] * 100:>9.2f}% "
            f"{rule['known_correct'] * 100:>10.2f}% | "
            f"{fx['stranger_false_accept'] * 100:>13.2f}% {fx['known_correct'] * 100:>10.2f}%"
        )
    lines.append("  threshold: the default for that many people (facesearch/threshold.py)")
    return lines


def write_report(ev: Evaluation, directory: str | Path) -> list[Path]:
    """Write the summary and plots into ``directory``; returns the files written."""
    out = Path(directory)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{out}: cannot create report folder ({err.strerror})") from err
    import matplotlib

    matplotlib.use("Agg")
    written = [out / "summary.txt", out / "summary.json"]
    written[0].write_text(summary_text(ev))
    written[1].write_text(ev.to_json() + "\n")
    if ev.verification is not None:
        written += [_roc_plot(ev, out / "roc.png"), _pair_hist(ev, out / "distances.png")]
    if ev.identification is not None:
        written += [_openset_hist(ev, out / "openset_distances.png"), _det(ev, out / "det.png")]
    return written


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _roc_plot(ev: Evaluation, path: Path) -> Path:
    import matplotlib.pyplot as plt

    v = ev.verification
    assert v is not None
    roc = metrics.roc_curve(v.dist, v.same)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    far = np.maximum(roc.far, 1e-5)
    ax.plot(far, roc.tar, lw=1.8, label=f"AUC {v.auc:.5f}")
    for f, tar in v.tar_at_far.items():
        ax.plot([f], [tar], "o", label=f"TAR {tar:.3f} @ FAR {f:g}")
    ax.set_xscale("log")
    ax.set_xlim(1e-4 if len(v.same) > 2000 else 1e-3, 1)
    ax.set_ylim(max(0.0, float(roc.tar[far >= 1e-3].min()) - 0.02), 1.001)
    ax.set_xlabel("false accept rate (different people accepted)")
    ax.set_ylabel("true accept rate (same person accepted)")
    ax.set_title(f"Verification ROC, {v.pairs} pairs")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def _histograms(
    path: Path,
    series: list[tuple[np.ndarray, str, str | None]],
    lines: list[tuple[float, str, str, str]],
    xlabel: str,
    ylabel: str,
    title: str,
) -> Path:
    """Overlaid distance histograms (values, label, colour) with thresholds (x, colour, style, label)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(0, 1.6, 81).tolist()
    for values, label, color in series:
        ax.hist(values, bins, alpha=0.6, label=label, color=color)
    for x, color, style, label in lines:
        ax.axvline(x, color=color, ls=style, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _pair_hist(ev: Evaluation, path: Path) -> Path:
    v = ev.verification
    assert v is not None
    lines = [(v.threshold, "k", "--", f"best threshold {v.threshold:.3f}")]
    if ev.identification is not None:
        t = ev.identification.threshold
        lines.append((t, "tab:blue", ":", f"open-set threshold {t:.3f}"))
    return _histograms(
        path,
        [
            (v.dist[v.same], "same person", "tab:green"),
            (v.dist[~v.same], "different people", "tab:red"),
        ],
        lines,
        "cosine distance",
        "pairs",
        "Verification pairs: distance distributions",
    )


def _openset_hist(ev: Evaluation, path: Path) -> Path:
    i = ev.identification
    assert i is not None
    r = i.result
    return _histograms(
        path,
        [
            (r.known_dist[r.known_right], "known, nearest is right", None),
            (r.known_dist[~r.known_right], "known, nearest is wrong", None),
            (r.stranger_dist, "stranger (nearest anyone)", None),
        ],
        [(i.threshold, "k", "--", f"threshold {i.threshold:.3f}")],
        "cosine distance to the nearest enrolled person",
        "queries",
        "Open-set identification",
    )


def _det(ev: Evaluation, path: Path) -> Path:
    import matplotlib.pyplot as plt

    i = ev.identification
    assert i is not None
    grid = np.linspace(0.0, 1.2, 601)
    rows = i.result.tradeoff(grid)
    fa = np.array([r["stranger_false_accept"] for r in rows])
    miss = 1 - np.array([r["known_correct"] for r in rows])
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.plot(np.maximum(fa, 1e-4), miss, lw=1.8)
    at = i.result.at(i.threshold)
    ax.plot(
        [max(at["stranger_false_accept"], 1e-4)],
        [1 - at["known_correct"]],
        "ko",
        label=f"threshold {i.threshold:.3f}",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("stranger false-accept rate")
    ax.set_ylabel("known queries not correctly named")
    ax.set_title("Open-set trade-off (DET)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
