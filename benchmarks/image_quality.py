"""The image part of benchmarks/quality.py: the conv VAE, the DCGAN and the conv VAE-GAN on
Fashion-MNIST and MNIST, each with the command line's defaults for ``--arch conv``, over seeds.

    python benchmarks/quality.py --only images                     # both data sets, 3 seeds
    python benchmarks/quality.py --only images --image-data fashion-mnist --seeds 1 --limit 20000
    python benchmarks/quality.py --only images --epochs 2          # a smaller budget, every model
    python benchmarks/quality.py --only images --from-runs runs/fm-*  # runs trained elsewhere

Each run's ``metrics.json`` (:mod:`minigen.image_report`) gives the Frechet distance, precision,
recall and classes covered of 5,000 samples against 10,000 real images
(``image_report.reference_images``: Fashion-MNIST's test set; MNIST's 2,000 held-out digits and its
8,000 training digits) on the features of minigen's own classifier, and for the models with an
encoder the test negative ELBO, the IWAE estimate and bits per dimension. The table shows mean +- sd
over the seeds and the training minutes; one run's samples per model and data set are copied to
``docs/images_<data>_<model>.png`` for the README.
"""

import glob
import os
import shutil
import statistics
import time

from minigen.io import read_json
from minigen.runs import train_run

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NAMES = {"vae": "conv VAE", "gan": "DCGAN", "vaegan": "conv VAE-GAN"}
COLUMNS = [("frechet_distance", "Fréchet distance ↓", 2), ("precision", "precision ↑", 3),
           ("recall", "recall ↑", 3), ("class_coverage", "classes", 0),
           ("test_nll_iwae", "IWAE NLL (nats) ↓", 1), ("bits_per_dim", "bits/dim ↓", 3)]


def run_record(folder):
    """One run folder as a record: its data, model, seed, settings, metrics and training minutes."""
    config = read_json(os.path.join(folder, "config.json"))
    history = read_json(os.path.join(folder, "history.json"))
    metrics = read_json(os.path.join(folder, "metrics.json"))
    return {"folder": folder, "data": config["data"], "kind": config["kind"],
            "seed": config["train"]["seed"], "train": config["train"], "model": config["model"],
            "minutes": sum(h.get("seconds", 0.0) for h in history) / 60, "metrics": metrics}


def train_images(datasets, kinds, seeds, folder, limit=None, epochs=None, log=print):
    """Train every (data set, model, seed) with ``--arch conv`` defaults into ``folder``
    (``limit`` training images and ``epochs``, when given, for every model)."""
    records = []
    for data in datasets:
        for kind in kinds:
            for seed in seeds:
                out = os.path.join(folder, f"{data}-{kind}-{seed}")
                began = time.perf_counter()
                extra = {} if epochs is None else {"epochs": epochs}
                train_run(kind, data, out=out, quiet=True, seed=seed, arch="conv", limit=limit,
                          log=lambda *a: None, **extra)
                records.append(run_record(out))
                log(f"  {NAMES[kind]} on {data}, seed {seed}: {_one_line(records[-1])} "
                    f"({(time.perf_counter() - began) / 60:.1f} min with the evaluation)")
    return records


def large_iwae(records, k=5000, n=100, log=print):
    """The IWAE estimate of -log p(x) with ``k`` importance samples (the issue asks K = 5,000) on
    the first ``n`` test images, for the VAE run of each data set with the lowest seed in
    ``records``: it tightens the K = 100 of ``metrics.json`` at 50 times its cost, so it runs on a
    subset (the count is kept)."""
    import minigen as mg
    from minigen.metrics import iwae_bound
    from minigen.runs import load_dataset, read_run_config

    first = {}
    for r in records:
        if r["kind"] == "vae" and (r["data"] not in first or r["seed"] < first[r["data"]]["seed"]):
            first[r["data"]] = r
    for r in first.values():
        config = read_run_config(os.path.join(r["folder"], "config.json"))
        model = mg.models.build_model(config["kind"], **config["model"])
        model.load(os.path.join(r["folder"], "model.npz"))
        model.eval()
        x = load_dataset(config["data"], log=lambda *a: None).test[:n]
        mg.manual_seed(0)
        began = time.perf_counter()
        nll = -iwae_bound(model, x, k=k, batch_size=1, max_rows=1000).mean().item()
        r["metrics"].update(test_nll_iwae_large=nll, iwae_large_k=k, iwae_large_examples=n)
        log(f"  {NAMES[r['kind']]} on {r['data']}, seed {r['seed']}: IWAE NLL (K={k}, first {n} "
            f"test images) {nll:.2f} nats ({time.perf_counter() - began:.0f} s)")
    return records


def collect(patterns):
    """Records of finished run folders named by glob ``patterns``."""
    folders = sorted({f for p in patterns for f in glob.glob(p)
                      if os.path.exists(os.path.join(f, "metrics.json"))})
    return [run_record(f) for f in folders]


def _one_line(record):
    m = record["metrics"]
    text = (f"Fréchet {m['frechet_distance']:.2f}, precision {m['precision']:.3f}, "
            f"recall {m['recall']:.3f}, classes {m['class_coverage']}")
    if "test_nll_iwae" in m:
        text += f", IWAE NLL {m['test_nll_iwae']:.1f} nats"
    return text


def _mean_sd(values, digits):
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.fmean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def table(records):
    """A Markdown table: one row per (data set, model), mean ± sd over its seeds (with a column
    for :func:`large_iwae` when some run has it)."""
    columns = list(COLUMNS)
    large = [r["metrics"] for r in records if "test_nll_iwae_large" in r["metrics"]]
    if large:
        columns.insert(5, ("test_nll_iwae_large", f"IWAE NLL K={large[0]['iwae_large_k']}, "
                           f"{large[0]['iwae_large_examples']} images, 1 seed ↓", 1))
    lines = ["| data | model | seeds | " + " | ".join(c[1] for c in columns) + " | train rows | "
             "epochs | minutes |", "| --- " * (len(columns) + 6) + "|"]
    groups = {}
    for r in records:
        groups.setdefault((r["data"], r["kind"]), []).append(r)
    for (data, kind), runs in sorted(groups.items()):
        cells = [_mean_sd([r["metrics"][key] for r in runs if key in r["metrics"]], digits)
                 for key, _, digits in columns]
        limit = runs[0]["train"].get("limit")
        lines.append(f"| {data} | {NAMES.get(kind, kind)} | {len(runs)} | " + " | ".join(cells)
                     + f" | {limit or 'all'} | {runs[0]['train']['epochs']} | "
                     f"{_mean_sd([r['minutes'] for r in runs], 1)} |")
    return "\n".join(lines)


def copy_grids(records, docs=os.path.join(ROOT, "docs")):
    """The first seed's samples of each (data set, model) as docs/images_<data>_<model>.png."""
    os.makedirs(docs, exist_ok=True)
    done = set()
    for r in sorted(records, key=lambda r: r["seed"]):
        key = (r["data"], r["kind"])
        if key in done:
            continue
        done.add(key)
        shutil.copyfile(os.path.join(r["folder"], "samples.png"),
                        os.path.join(docs, f"images_{r['data']}_{r['kind']}.png"))
    return sorted(done)


def summary(records):
    """What quality.json keeps: per data set and model, each seed's metrics and minutes."""
    out = {}
    for r in records:
        out.setdefault(r["data"], {}).setdefault(r["kind"], []).append(
            dict(r["metrics"], seed=r["seed"], minutes=round(r["minutes"], 2),
                 limit=r["train"].get("limit"), epochs=r["train"]["epochs"]))
    return out
