"""Notebook 01's figure: meta-training learning curves."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt

from .paths import figures_dir


def plot_curves(histories: dict, profile: str, init: str = "imagenet"):
    """Learning curves: training query loss and base-val frozen accuracy (95% CI) per backbone,
    saved to figures/<profile>/meta_training[_scratch].png."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for m, hist in histories.items():
        ep = [r["episode"] for r in hist]
        ax1.plot(ep[1:], [r["train_loss"] for r in hist[1:]], marker="o", ms=3, label=m)
        acc = [r.get("val_acc", math.nan) for r in hist]
        ci = [r.get("val_ci95", 0.0) for r in hist]
        ax2.errorbar(ep, acc, yerr=ci, marker="o", ms=3, capsize=2, label=m)
    ax1.set(xlabel="episode", ylabel="query cross-entropy (mean since last point)",
            title="meta-training loss")
    ax2.set(xlabel="episode", ylabel="base-val 5-way accuracy (%)",
            title="model selection (frozen features, 95% CI)")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    fig.suptitle(f"ProtoNet meta-training on the base domain ({profile}, init={init})")
    fig.tight_layout()
    name = "meta_training" if init == "imagenet" else "meta_training_scratch"
    fig.savefig(figures_dir(profile) / f"{name}.png", dpi=120)
    return fig
