"""Draw the VAE's seconds per epoch against batch size and hidden width, NumPy beside CuPy, from the
results ``run.py`` wrote (the GPU's come from a run of ``gpu_check.sh`` on a GPU machine):

    python benchmarks/plot_sweep.py [--numpy FILE.json] [--cupy FILE.json]
                                    [--out docs/speed_sweep.png]

Where the lines cross, the GPU starts paying for its kernel launches.
"""

import argparse
import json
import os

from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")


def load_sweep(path):
    """(label, sweep dict) from a run.py JSON file, or None when the file or its sweep is
    missing."""
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        result = json.load(f)
    # run.py files keep each BLAS setting's suites under "settings" (older ones at the top level)
    sweep = result.get("sweep") or next(
        (suites["sweep"] for suites in result.get("settings", {}).values() if "sweep" in suites),
        None)
    if sweep is None:
        return None
    machine = result.get("machine", {})
    gpu = result["backend"] == "cupy"
    where = machine.get("gpu") if gpu else f"{machine.get('cpus', '?')}-core CPU"
    label = f"{'CuPy' if gpu else 'NumPy'} ({where}, {machine.get('date', '')})"
    return label, sweep


def draw(sweeps):
    figure = Figure(figsize=(10, 4), layout="constrained")
    axes = figure.subplots(1, 2)
    titles = {"batch_size": "batch size (hidden width 400)", "width": "hidden width (batch 128)"}
    for ax, key in zip(axes, ("batch_size", "width")):
        for (label, sweep), marker in zip(sweeps, "os^"):
            points = sweep.get(key, [])
            ax.plot([p["value"] for p in points], [p["seconds"] for p in points], marker=marker,
                    label=label)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        values = sorted({p["value"] for _, sweep in sweeps for p in sweep.get(key, [])})
        ax.set_xticks(values, [str(v) for v in values])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel(titles[key])
        ax.set_ylabel("seconds per epoch (8,000 digits)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    figure.suptitle("MNIST VAE 784-H-20, Adam, float32: time per epoch (lower is better)")
    return figure


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--numpy", default=os.path.join(RESULTS, "speed-numpy.json"))
    parser.add_argument("--cupy", default=os.path.join(RESULTS, "gpu", "speed-cupy.json"))
    parser.add_argument("--out", default=os.path.join(HERE, "..", "docs", "speed_sweep.png"))
    args = parser.parse_args(argv)
    sweeps = [s for s in (load_sweep(args.numpy), load_sweep(args.cupy)) if s is not None]
    if not sweeps:
        parser.exit(2, "plot_sweep.py: no sweep results found; run benchmarks/run.py first\n")
    draw(sweeps).savefig(args.out + ".tmp.png", dpi=110)
    os.replace(args.out + ".tmp.png", args.out)
    print(f"wrote {args.out} ({', '.join(label for label, _ in sweeps)})")


if __name__ == "__main__":
    main()
