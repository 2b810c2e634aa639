"""Quality of the models with their default settings, as the README reports it.

    python benchmarks/quality.py                 # everything (about 6 minutes on 2 CPU cores)
    python benchmarks/quality.py --only ring     # one part: ring, grid, mnist, iwae, images

1. ring: VAE, GAN and VAE-GAN with default settings over 5 seeds: modes covered (of 8), high-quality
   fraction, reverse KL, mean +- sd, and one figure with their samples side by side.
2. grid: the GAN on 25 modes over the same seeds, with its grid defaults (runs.defaults("gan",
   "grid"): PacGAN packing of 2 points, 128 -> 128 networks, 250 epochs).
3. mnist: the 784-400-20 VAE (Adam 1e-3, batch 128, 10 epochs, 8,000/2,000 split of the test digits)
   against the same model and data in PyTorch, when PyTorch is installed.
4. iwae: the importance-weighted NLL for K = 1, 5, 50, 500 against the negative ELBO.
5. images (only when asked: --only images; see benchmarks/image_quality.py): the conv VAE, DCGAN
   and conv VAE-GAN on Fashion-MNIST and MNIST over 3 seeds, Frechet distance, precision, recall,
   classes covered and likelihoods; sample grids in docs/images_<data>_<model>.png.

Results go to benchmarks/results/quality.json and docs/ring_comparison.png; a Markdown table is
printed.
"""

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time

import minigen as mg
from minigen import plots
from minigen.data import load_mnist, ring
from minigen.metrics import elbo, iwae_bound
from minigen.runs import train_run
from minigen.train import read_json

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from references import torch_vae  # noqa: E402  (the same PyTorch VAE that run.py times)
import image_quality  # noqa: E402  (the images part)


def _mean_sd(values):
    values = list(values)
    if not all(math.isfinite(v) for v in values):      # e.g. reverse KL with no high-quality sample
        return math.inf, math.nan
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), sd


def _train(kind, data, seed, folder, **overrides):
    began = time.perf_counter()
    out = train_run(kind, data, out=os.path.join(folder, f"{kind}-{data}-{seed}"), overwrite=True,
                    quiet=True, seed=seed, log=lambda *a: None, **overrides)
    seconds = time.perf_counter() - began
    metrics = read_json(os.path.join(out, "metrics.json"))
    if metrics.get("reverse_kl", 0.0) is None:   # null in metrics.json: no high-quality sample
        metrics["reverse_kl"] = math.inf
    return out, metrics, seconds


def modes_part(data, kinds, seeds, folder):
    rows, panels = {}, []
    for kind in kinds:
        runs = []
        for seed in seeds:
            out, metrics, seconds = _train(kind, data, seed, folder)
            runs.append(dict(metrics, seconds=seconds))
            print(f"  {kind:7s} {data} seed {seed}: "
                  f"{metrics['modes_covered']}/{metrics['modes_total']} "
                  f"modes, {100 * metrics['high_quality_fraction']:.1f}% high quality, "
                  f"reverse KL {metrics['reverse_kl']:.3f}, {seconds:.1f} s", flush=True)
            if seed == seeds[0]:
                config = read_json(os.path.join(out, "config.json"))["model"]
                model = mg.models.build_model(kind, **config)
                model.load(os.path.join(out, "model.npz"))
                mg.manual_seed(0)
                with mg.no_grad():
                    panels.append((kind.upper() if kind != "vaegan" else "VAE-GAN",
                                   model.sample(2500)))
        rows[kind] = runs
    return rows, panels


def _summary_row(name, runs):
    modes = _mean_sd(r["modes_covered"] for r in runs)
    quality = _mean_sd(100 * r["high_quality_fraction"] for r in runs)
    kl = _mean_sd(r["reverse_kl"] for r in runs)
    seconds = _mean_sd(r["seconds"] for r in runs)
    kl_text = (f"{kl[0]:.3f} ± {kl[1]:.3f}" if math.isfinite(kl[0])
               else "∞ (some runs: no sharp sample)")
    return (f"| {name} | {modes[0]:.1f} ± {modes[1]:.1f} / {runs[0]['modes_total']} | "
            f"{quality[0]:.1f} ± {quality[1]:.1f} | {kl_text} | {seconds[0]:.0f} |")


def mnist_part(folder, epochs=10):
    out, metrics, _ = _train("vae", "mnist", 0, folder, epochs=epochs)
    seconds = sum(h["seconds"] for h in read_json(os.path.join(out, "history.json")))
    result = {"minigen": dict(metrics, seconds=seconds)}
    print(f"  minigen VAE on MNIST: test loss {metrics['test_loss']:.2f} nats, "
          f"IWAE NLL {metrics['test_nll_iwae']:.2f} nats, training {seconds:.1f} s", flush=True)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("  PyTorch is not installed: skipping the comparison (pip install torch)")
        return result, out
    result["pytorch"] = _pytorch_vae(epochs)
    print(f"  PyTorch VAE on MNIST: test loss {result['pytorch']['test_loss']:.2f} nats, "
          f"training {result['pytorch']['seconds']:.1f} s", flush=True)
    return result, out


def _pytorch_vae(epochs, seed=0):
    """The same 784-400-20 VAE, data split, optimizer and loss in PyTorch (its own
    initialisation)."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)             # as minigen: one thread each, on the same machine
    split = load_mnist(log=lambda *a: None)
    train_x = torch.from_numpy(split.train_images.numpy().copy())
    test_x = torch.from_numpy(split.test_images.numpy().copy())

    model = torch_vae()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    began = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(train_x))
        for start in range(0, len(train_x), 128):
            loss = model.loss(train_x[order[start:start + 128]])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    seconds = time.perf_counter() - began
    with torch.no_grad():
        test_loss = model.loss(test_x).item()
    return {"test_loss": test_loss, "seconds": seconds}


def iwae_part(run_folder, ks=(1, 5, 50, 500), n=500):
    config = read_json(os.path.join(run_folder, "config.json"))
    model = mg.models.build_model("vae", **config["model"])
    model.load(os.path.join(run_folder, "model.npz"))
    x = load_mnist(log=lambda *a: None).test_images[:n]
    mg.manual_seed(0)
    result = {"negative_elbo": -elbo(model, x).mean().item()}
    for k in ks:
        result[f"K={k}"] = -iwae_bound(model, x, k=k, batch_size=50).mean().item()
    print("  " + ", ".join(f"{name}: {value:.2f}" for name, value in result.items()), flush=True)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["ring", "grid", "mnist", "iwae", "images"],
                        action="append")
    parser.add_argument("--seeds", type=int, default=None,
                        help="seeds per model (default: 5; images: 3)")
    parser.add_argument("--image-data", nargs="+", default=["fashion-mnist", "mnist"],
                        choices=["fashion-mnist", "mnist"], help="images: the data sets")
    parser.add_argument("--image-models", nargs="+", default=["vae", "gan", "vaegan"],
                        choices=["vae", "gan", "vaegan"], help="images: the models")
    parser.add_argument("--limit", type=int, default=None,
                        help="images: train on the first N training images only")
    parser.add_argument("--epochs", type=int, default=None,
                        help="images: epochs of every model (default: the --arch conv defaults)")
    parser.add_argument("--iwae-k", type=int, default=None, metavar="K",
                        help="images: also the conv VAE's IWAE NLL with K samples (e.g. 5000)")
    parser.add_argument("--iwae-images", type=int, default=100, metavar="N",
                        help="images: ... on the first N test images (default: 100)")
    parser.add_argument("--from-runs", nargs="+", metavar="GLOB",
                        help="images: report these finished run folders instead of training")
    args = parser.parse_args(argv)
    mg.backend.set_num_threads(1)          # the README's runs: the count changes the last bits
    parts = args.only or ["ring", "grid", "mnist", "iwae"]
    seeds = list(range(args.seeds or 5))
    results_path = os.path.join(HERE, "results", "quality.json")
    results = {}
    if os.path.exists(results_path):       # json, not minigen.io.read_json: it holds Infinity
        with open(results_path) as f:
            results = json.load(f)
    table = []
    with tempfile.TemporaryDirectory() as folder:
        if "ring" in parts:
            print("ring: VAE vs GAN vs VAE-GAN", flush=True)
            rows, panels = modes_part("ring", ["vae", "gan", "vaegan"], seeds, folder)
            results["ring"] = rows
            _save(results, results_path)
            data, _ = ring(2500, seed=123)
            figure = plots.comparison_2d(panels, data=data, limit=2.6)
            plots.save(figure, os.path.join(ROOT, "docs", "ring_comparison.png"), dpi=90)
        if "grid" in parts:
            print("grid: GAN", flush=True)
            results["grid"], _ = modes_part("grid", ["gan"], seeds, folder)
            _save(results, results_path)
        if "mnist" in parts or "iwae" in parts:
            if not (os.environ.get("MINIGEN_DATA") or os.path.isdir(os.path.expanduser(
                    "~/.cache/minigen/mnist"))):
                print("MNIST parts need MINIGEN_DATA (see the README)", file=sys.stderr)
            else:
                print("mnist: VAE 784-400-20", flush=True)
                results["mnist"], run = mnist_part(folder)
                _save(results, results_path)
                if "iwae" in parts:
                    print("iwae: -L_K on 500 test digits", flush=True)
                    results["iwae"] = iwae_part(run)
                    _save(results, results_path)
        if "images" in parts:
            if args.from_runs:
                records = image_quality.collect(args.from_runs)
            else:
                print("images: conv VAE, DCGAN, conv VAE-GAN", flush=True)
                records = image_quality.train_images(
                    args.image_data, args.image_models, list(range(args.seeds or 3)),
                    folder, limit=args.limit, epochs=args.epochs)
            if args.iwae_k:
                image_quality.large_iwae(records, args.iwae_k, args.iwae_images)
            results["images"] = image_quality.summary(records)
            _save(results, results_path)
            image_quality.copy_grids(records)
            table.append("\nimages:\n\n" + image_quality.table(records))
    _save(results, results_path)
    for name, rows in (("ring", results.get("ring")), ("grid", results.get("grid"))):
        if rows:
            table.append(f"\n{name} ({len(next(iter(rows.values())))} seeds):\n\n"
                         "| model | modes covered | high quality % | reverse KL | seconds |\n"
                         "| --- | --- | --- | --- | --- |")
            for kind, runs in rows.items():
                table.append(_summary_row("VAE-GAN" if kind == "vaegan" else kind.upper(), runs))
    print("\n".join(table))


def _save(results, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        # inf (no high-quality sample) is written as Infinity
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
