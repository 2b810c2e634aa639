"""Train the feature classifiers that minigen's image metrics use, with minigen itself.

    python benchmarks/train_classifier.py                       # both data sets
    python benchmarks/train_classifier.py --data fashion-mnist --epochs 4

For each data set: :class:`minigen.models.classifier.ImageClassifier` trained by Adam (lr 1e-3,
batch 128) on the training images with the softmax cross-entropy

    loss = mean_n [ logsumexp_c(l_nc) - l_{n, y_n} ]          (l: the logits, y: the labels)

then measured on the test images: Fashion-MNIST's 10,000 test images; MNIST's last 2,000 of the
10,000 test digits when only those are there (the first 8,000 are its training set), else the
10,000 test digits.  The weights go to ``minigen/weights/<data set>-classifier.npz`` and the
settings, the test accuracy and the time to ``minigen/weights/classifiers.json``, which the
README's numbers come from.  Needs MINIGEN_DATA (see the README).
"""

import argparse
import json
import os
import platform
import sys
import time

import minigen as mg
from minigen.data import DataLoader, load_images
from minigen.models.classifier import WEIGHTS_DIR, ImageClassifier, weights_path
from minigen.optim import Adam

TARGETS = {"fashion-mnist": 0.90, "mnist": 0.97}        # the accuracies issue 14 asks for


def cross_entropy(logits, labels, num_classes=10):
    """The mean softmax cross-entropy of (N, C) logits against int labels (N,), composed from
    minigen's ops (logsumexp subtracts the max: stable for any logits)."""
    classes = mg.Tensor(list(range(num_classes)), dtype="int64").to(logits.device)
    one_hot = (labels.reshape(-1, 1) == classes.reshape(1, -1)).astype(mg.get_default_dtype())
    return (mg.logsumexp(logits, axis=1) - (logits * one_hot).sum(axis=1)).mean()


def accuracy(model, images, labels, batch_size=1000):
    """The fraction of ``images`` whose predicted class is the label (model in eval mode)."""
    model.eval()
    right = 0
    with mg.no_grad():
        for start in range(0, len(images), batch_size):
            stop = min(start + batch_size, len(images))
            predicted = model(images[start:stop]).numpy().argmax(axis=1)
            right += int((predicted == labels[start:stop].numpy()).sum())
    model.train()
    return right / len(images)


def train(dataset, epochs, seed=0, batch_size=128, lr=1e-3, log=print):
    split = load_images(dataset, download=False, log=log)
    mg.manual_seed(seed)
    model = ImageClassifier()
    optimizer = Adam(model.parameters(), lr=lr)
    loader = DataLoader(split.train_images, split.train_labels, batch_size=batch_size,
                        shuffle=True, seed=seed)
    began = time.perf_counter()
    history = []
    for epoch in range(epochs):
        model.train()
        total, steps = 0.0, 0
        for x, y in loader:
            optimizer.zero_grad()
            loss = cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            total, steps = total + loss.item(), steps + 1
        test = accuracy(model, split.test_images, split.test_labels)
        history.append({"epoch": epoch + 1, "loss": total / steps, "test_accuracy": test,
                        "seconds": round(time.perf_counter() - began, 1)})
        log(f"{dataset} epoch {epoch + 1}/{epochs}: loss {total / steps:.4f}, "
            f"test accuracy {100 * test:.2f}%, {time.perf_counter() - began:.0f} s")
    model.eval()
    model.save(weights_path(dataset))
    return {
        "test_accuracy": history[-1]["test_accuracy"],
        "target": TARGETS[dataset],
        "train_images": len(split.train_images),
        "test_images": len(split.test_images),
        "split": split.note,
        "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
        "seconds": round(time.perf_counter() - began, 1),
        "load_average": round(os.getloadavg()[0], 2),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "history": history,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=["fashion-mnist", "mnist", "all"], default="all")
    parser.add_argument("--epochs", type=int, default=None,
                        help="default: 4 on Fashion-MNIST, 8 on MNIST's 8,000 training digits")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    mg.set_num_threads(1)
    info_path = os.path.join(WEIGHTS_DIR, "classifiers.json")
    info = {}
    if os.path.exists(info_path):
        with open(info_path) as f:
            info = json.load(f)
    for dataset in (["fashion-mnist", "mnist"] if args.data == "all" else [args.data]):
        epochs = args.epochs or (4 if dataset == "fashion-mnist" else 8)
        info[dataset] = train(dataset, epochs, seed=args.seed)
        tmp = info_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(info, f, indent=2)
            f.write("\n")
        os.replace(tmp, info_path)
        reached = info[dataset]["test_accuracy"]
        verdict = "meets" if reached >= TARGETS[dataset] else "MISSES"
        print(f"{dataset}: test accuracy {100 * reached:.2f}% {verdict} the target "
              f"{100 * TARGETS[dataset]:.0f}% -> {weights_path(dataset)}", file=sys.stderr)


if __name__ == "__main__":
    main()
