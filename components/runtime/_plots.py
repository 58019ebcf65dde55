"""Plots of task records: a per-worker timeline and a latency histogram."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from components.runtime.taskpath import TaskHandle


def plot_tasks(tasks: Sequence[TaskHandle], out_dir: Path, title: str) -> list[Path]:
    """Write ``timeline.png`` and ``latency.png``; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ran = [t for t in tasks if t.start]
    if not ran:
        return []
    origin = min(t.dispatched for t in ran)
    workers = sorted({t.worker for t in ran})
    row = {w: i for i, w in enumerate(workers)}

    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.3 * len(workers) + 1.5)))
    for ok, colour in ((True, "tab:blue"), (False, "tab:red")):
        sel = [t for t in ran if t.success == ok]
        if sel:
            ax.hlines(
                [row[t.worker] for t in sel],
                [t.start - origin for t in sel],
                [t.end - origin for t in sel],
                colors=colour,
                linewidth=6,
                label="succeeded" if ok else "failed",
            )
    ax.set_yticks(
        range(len(workers)),
        [w.rsplit(":", 2)[-2] + ":" + w.rsplit(":", 1)[-1] for w in workers],
        fontsize=7,
    )
    ax.set_xlabel("seconds since first dispatch")
    ax.set_title(f"{title}: task timeline per worker")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    timeline = out_dir / "timeline.png"
    fig.savefig(timeline, dpi=110)
    plt.close(fig)

    latency = np.array([(t.done - t.dispatched) * 1e3 for t in ran])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(latency, bins=min(60, max(10, len(latency) // 20)), color="tab:blue")
    for q, style in ((50, "-"), (99, "--")):
        ax.axvline(
            float(np.percentile(latency, q)),
            color="black",
            linestyle=style,
            label=f"p{q} = {np.percentile(latency, q):.2f} ms",
        )
    ax.set_xlabel("task latency, dispatch → result (ms)")
    ax.set_ylabel("tasks")
    ax.set_title(f"{title}: latency")
    ax.legend(fontsize=8)
    fig.tight_layout()
    hist = out_dir / "latency.png"
    fig.savefig(hist, dpi=110)
    plt.close(fig)
    return [timeline, hist]
