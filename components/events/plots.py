"""Plots of event runs: the end-to-end latency distribution."""

from __future__ import annotations

from pathlib import Path


def plot_latency(latencies_ns: list[int], path: Path) -> Path | None:
    """Write a histogram of end-to-end latencies with p50 and p99 marked."""
    if not latencies_ns:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ms = np.asarray(latencies_ns, dtype=np.float64) / 1e6
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(ms, bins=100, color="tab:blue")
    for q, style in ((50, "--"), (99, ":")):
        value = float(np.percentile(ms, q))
        ax.axvline(value, color="black", linestyle=style, label=f"p{q} {value:.2f} ms")
    ax.set_xlabel("end-to-end latency (ms)")
    ax.set_ylabel("events")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
