"""``cnnkit train``, ``cnnkit evaluate`` and ``cnnkit predict``.

Results go to stdout (the model summary first, the test accuracy last); progress and epoch lines go
to stderr. A run directory holds ``model.safetensors``, ``config.json``, ``log.jsonl``,
``metrics.json``, ``checkpoint.safetensors`` (for ``--resume``) and, with ``--plots``,
``curves.png`` and ``confusion.png``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from . import CLIError

# Defaults of a plain `cnnkit train`: LeNet-5 on the built-in digits. Measured on the 2-core machine
# (seeds 0, 1, 2): 99.2 %, 98.3 %, 98.9 % test accuracy with the last epoch's weights; the epoch with the
# best accuracy on the 180 validation digits scored 97.5-99.2 % (too few to choose by), hence keep="last".
DEFAULTS = {"model": "lenet5", "data": "digits", "epochs": 40, "batch_size": 32, "optimizer": "sgd", "lr": None,
            "momentum": None, "weight_decay": 5e-4, "scheduler": "cosine", "seed": 0, "early_stopping": None,
            "augment": True, "keep": "last", "pretrained": None, "freeze": None}
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3, "rmsprop": 1e-3, "adagrad": 1e-2}
# mnist-5k's SGD rate, chosen on its 400 validation digits (seeds 0, 1, 2; 40 epochs): 0.02 gave 98.5 % mean
# validation accuracy, 0.01 98.3 %, 0.03 98.3 %, 0.05 97.8 %, 0.1 diverged in one seed of three.
DATA_SGD_LR = {"mnist-5k": 0.02}
OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "rmsprop": "RMSprop", "adagrad": "Adagrad"}
SPLIT_SEED, VAL_FRACTION = 0, 0.1
DATA_HELP = "digits (built-in, default), faces (built-in), mnist-5k (built-in), mnist, fashion-mnist, cifar10, " \
            "or a folder PATH with one sub-folder of images per class"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a model on a data set (default: LeNet-5 on the built-in digits)",
        description="Train a classifier. With no arguments: lenet5 on the built-in handwritten digits, "
                    "about a minute or two on a 2-core CPU, about 99% test accuracy, files in runs/lenet5-digits. "
                    "The model summary is printed first and the test accuracy last.")
    p.add_argument("model", nargs="?", metavar="MODEL",
                   help="model name from the zoo (default: lenet5; see `cnnkit models`), or a layer pattern "
                        "such as 'INPUT -> [CONV -> RELU -> POOL]*2 -> FC -> RELU -> FC'")
    p.add_argument("--data", metavar="NAME|PATH", help=DATA_HELP)
    p.add_argument("--root", metavar="DIR", help="folder holding (or receiving) mnist/fashion-mnist/cifar10 "
                                                 "(default: $CNNKIT_HOME/datasets or ~/.cache/cnnkit/datasets)")
    p.add_argument("--download", action="store_true", help="download a missing data set (SHA-256 verified)")
    p.add_argument("--epochs", type=int, metavar="N", help=f"epochs (default {DEFAULTS['epochs']})")
    p.add_argument("--batch-size", type=int, metavar="N", help=f"batch size (default {DEFAULTS['batch_size']})")
    p.add_argument("--optimizer", choices=list(OPTIMIZERS), help="optimiser (default sgd with momentum 0.9)")
    p.add_argument("--lr", type=float, help="learning rate (default: adam/rmsprop 1e-3, sgd 0.05 (0.02 on mnist-5k), "
                                            "adagrad 0.01)")
    p.add_argument("--momentum", type=float, help="momentum for sgd and rmsprop (default 0.9 for sgd, 0 rmsprop)")
    p.add_argument("--weight-decay", type=float, help="L2 weight decay (default 5e-4)")
    p.add_argument("--scheduler", choices=["none", "step", "cosine"],
                   help="learning-rate schedule over the epochs (default cosine; step: x0.1 after each third of the epochs)")
    p.add_argument("--early-stopping", type=int, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without a better validation accuracy")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random shifts of up to 2 pixels (digits, faces, mnist, fashion-mnist; 4 and horizontal "
                        "flips for cifar10) while training (default on; folders of images: never)")
    p.add_argument("--keep", choices=["last", "best"],
                   help="weights to save and test: the last epoch's (default) or the epoch with the best "
                        "validation accuracy")
    p.add_argument("--seed", type=int, help="seed of initialisation, shuffling and augmentation (default 0)")
    p.add_argument("--out", metavar="DIR", help="run directory (default runs/MODEL-DATA, numbered -2, -3, ... "
                                                "if it exists)")
    p.add_argument("--from", dest="pretrained", metavar="RUN|FILE|WEIGHTS",
                   help="start from pre-trained weights: a run directory, a .safetensors/.pth file or registered "
                        "weights (`cnnkit weights list`); a head of another size is replaced by a fresh one")
    p.add_argument("--freeze", choices=["head", "later", "all"],
                   help="with --from: train only the new head, the later half of the network, or everything "
                        "(the lecture's three fine-tuning modes; default all)")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted run in --out (default: the latest runs/MODEL-DATA*) with its "
                        "saved settings (--epochs may raise the total with --scheduler none)")
    p.add_argument("--plots", action=argparse.BooleanOptionalAction, default=None,
                   help="write curves.png and confusion.png (default: on when matplotlib is installed)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: only when stderr is a terminal)")
    p.set_defaults(func=cmd_train)

    e = subparsers.add_parser("evaluate", help="accuracy, per-class precision/recall and confusion matrix of a run",
                              description="Evaluate a trained run on the test split of its data set (or --data).")
    e.add_argument("run", metavar="DIR", help="run directory written by `cnnkit train`")
    e.add_argument("--data", metavar="NAME|PATH", help="data set to evaluate on (default: the run's); " + DATA_HELP)
    e.add_argument("--root", metavar="DIR", help="folder holding mnist/fashion-mnist/cifar10")
    e.add_argument("--split", choices=["test", "val", "train"], default="test", help="which split (default test)")
    e.add_argument("--json", action="store_true", help="print JSON instead of tables")
    e.set_defaults(func=cmd_evaluate)

    q = subparsers.add_parser("predict", help="classify image files with a trained run",
                              description="Class names with softmax probabilities for each IMAGE. Images are "
                                          "converted as the training images were: grey or RGB, resized to the "
                                          "model's input, scaled to [0, 1] and normalised.")
    q.add_argument("run", metavar="DIR", help="run directory written by `cnnkit train`")
    q.add_argument("images", metavar="IMAGE", nargs="+", help="PNG/JPEG/... files")
    q.add_argument("--top", type=int, default=3, metavar="K", help="show the K most probable classes (default 3)")
    q.add_argument("--invert", action="store_true",
                   help="invert brightness first (dark drawing on light paper, for a model trained on the "
                        "light-on-dark digits; runs trained on mnist or mnist-5k invert by themselves when the "
                        "paper is light)")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_predict)


# ----------------------------------------------------------------------------- helpers
def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _data_label(source: str) -> str:
    from cnnkit.data.sets import NAMES, _ALIASES
    low = source.lower()
    if low in NAMES or low in _ALIASES:
        return _ALIASES.get(low, low)
    return Path(source).resolve().name or "data"


def _is_pattern(name: str) -> bool:
    return "->" in name or "→" in name


def _load_splits(source, root, download, input_size=None, channels=None):
    from cnnkit import data
    kw = {"size": tuple(input_size[1:])} if input_size is not None else {}
    if channels is not None and Path(source).is_dir() and source.lower() not in data.sets.NAMES:
        kw["mode"] = "L" if channels == 1 else "RGB"
    return data.load(source, root=root, download=download, seed=SPLIT_SEED, val_fraction=VAL_FRACTION, **kw)


def _build_model(name: str, channels: int, num_classes: int):
    from cnnkit import models
    kwargs = {"num_classes": num_classes}
    if channels != models.default_input_size(name)[0]:
        kwargs["in_channels"] = channels
    try:
        return models.create(name, **kwargs)
    except TypeError as exc:
        if "in_channels" in kwargs and "in_channels" in str(exc):
            raise CLIError(f"model {name} takes {models.default_input_size(name)[0]}-channel images and cannot "
                           f"be built for {channels}-channel data") from None
        raise


def _print_summary(model, input_size) -> None:
    import cnnkit
    try:
        text = str(cnnkit.summary(model, tuple(input_size)))
    except Exception:  # the report is a courtesy; training does not depend on it
        n = sum(p.numel() for p in model.parameters())
        text = f"{model.config['name']}: {n:,} parameters, input {tuple(input_size)}"
    print(text, flush=True)


def _next_free(base: Path) -> Path:
    if not base.exists():
        return base
    i = 2
    while Path(f"{base}-{i}").exists():
        i += 1
    return Path(f"{base}-{i}")


def _latest(base: Path) -> Path | None:
    found = [p for p in base.parent.glob(base.name + "*")
             if p.name == base.name or p.name[len(base.name):].lstrip("-").isdigit()] if base.parent.exists() else []
    found = [p for p in found if (p / "checkpoint.safetensors").exists()]
    return max(found, key=lambda p: (p / "checkpoint.safetensors").stat().st_mtime) if found else None


def _resolve_settings(args) -> tuple[dict, Path]:
    """Merge defaults, a resumed run's saved settings and the explicit arguments; pick the run directory."""
    given = {k: getattr(args, k) for k in DEFAULTS if getattr(args, k, None) is not None}
    settings = {**DEFAULTS, **given}
    if not args.resume:
        if args.out:
            out = Path(args.out)
            if (out / "checkpoint.safetensors").exists():
                raise CLIError(f"{out} already holds a run: pass --resume to continue it, or choose another --out")
        else:
            out = _next_free(_default_dir(settings))
        return settings, out
    if args.out:
        out = Path(args.out)
    else:
        base = _default_dir(settings)
        out = _latest(base)
        if out is None:
            raise CLIError(f"--resume: no run to resume in {base}*; pass --out DIR")
    from cnnkit.train.run import read_config
    if not (out / "checkpoint.safetensors").exists():
        raise CLIError(f"--resume: {out} holds no checkpoint.safetensors to resume from")
    cfg = read_config(out)
    saved = cfg.get("training", {})
    conflicts = [f"--{k.replace('_', '-')} {given[k]} (the run used {saved.get(k)})" for k in given
                 if k != "epochs" and k in saved and given[k] != saved[k]]
    if conflicts:
        raise CLIError(f"--resume continues {out} with its own settings; remove " + ", ".join(conflicts))
    settings = {**DEFAULTS, **saved, **{k: v for k, v in given.items() if k == "epochs"}}
    if settings["epochs"] != saved.get("epochs", settings["epochs"]) and settings["scheduler"] != "none":
        raise CLIError(f"--resume: the {settings['scheduler']} learning-rate schedule of {out} was planned for "
                       f"{saved['epochs']} epochs; resume with --epochs {saved['epochs']} (only runs with "
                       f"--scheduler none can be extended)")
    return settings, out


def _default_dir(settings) -> Path:
    model = "pattern" if _is_pattern(settings["model"]) else settings["model"]
    return Path("runs") / f"{model}-{_data_label(settings['data'])}"


def _augmentation(name: str, input_size) -> list:
    """Random transforms for training images of the named built-in sets (none for image folders)."""
    from cnnkit.data import RandomCrop, RandomHorizontalFlip
    size = tuple(input_size[1:])
    if name in ("digits", "mnist-5k", "mnist", "fashion-mnist"):
        return [RandomCrop(size, padding=2)]
    if name == "faces":
        return [RandomCrop(size, padding=2), RandomHorizontalFlip()]
    if name == "cifar10":
        return [RandomCrop(size, padding=4), RandomHorizontalFlip()]
    return []


def _make_optimizer(settings, model):
    from cnnkit import optim
    name = settings["optimizer"]
    lr = settings["lr"] if settings["lr"] is not None else DEFAULT_LR[name]
    kw = {"lr": lr, "weight_decay": settings["weight_decay"]}
    if name == "sgd":
        kw["momentum"] = 0.9 if settings["momentum"] is None else settings["momentum"]
    elif name == "rmsprop" and settings["momentum"] is not None:
        kw["momentum"] = settings["momentum"]
    elif settings["momentum"] is not None:
        raise CLIError(f"--momentum applies to sgd and rmsprop, not {name}")
    return getattr(optim, OPTIMIZERS[name])(model.parameters(), **kw)


def _make_scheduler(settings, optimizer):
    from cnnkit.optim import lr_scheduler
    kind, epochs = settings["scheduler"], settings["epochs"]
    if kind == "step":
        return lr_scheduler.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)
    if kind == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    return None


def _check_positive(settings) -> None:
    for key in ("epochs", "batch_size"):
        if settings[key] < 1:
            raise CLIError(f"--{key.replace('_', '-')} must be at least 1, got {settings[key]}")
    if settings["lr"] is not None and not settings["lr"] > 0:
        raise CLIError(f"--lr must be positive, got {settings['lr']}")
    if settings["early_stopping"] is not None and settings["early_stopping"] < 1:
        raise CLIError(f"--early-stopping must be at least 1, got {settings['early_stopping']}")


# ----------------------------------------------------------------------------- train
def cmd_train(args) -> int:
    import cnnkit
    from cnnkit.data import Compose, DataLoader
    from cnnkit.train import Trainer, evaluate
    from cnnkit.train.trainer import DivergedError

    settings, out = _resolve_settings(args)
    _check_positive(settings)
    if settings["lr"] is None:
        settings["lr"] = DEFAULT_LR[settings["optimizer"]]
        if settings["optimizer"] == "sgd":
            settings["lr"] = DATA_SGD_LR.get(_data_label(settings["data"]), settings["lr"])
    from cnnkit import models
    name = settings["model"]
    pattern = _is_pattern(name)
    if not pattern:
        models.default_input_size(name)  # an unknown name fails here, before any data is read
    from cnnkit.data.sets import NAMES, _ALIASES
    if settings["data"].lower() not in {**NAMES, **_ALIASES} and Path(settings["data"]).is_dir():
        settings["data"] = str(Path(settings["data"]).resolve())  # so evaluate/--resume work from elsewhere
    root = args.root if args.root is not None else settings.get("root")
    settings["root"] = str(Path(root).resolve()) if root is not None else None
    splits = _load_splits(settings["data"], root, args.download,
                          None if pattern else models.default_input_size(name))
    channels = splits.input_size[0]
    input_size = tuple(splits.input_size)

    cnnkit.manual_seed(settings["seed"])
    if pattern:
        model = models.from_pattern(name, input_size=input_size, num_classes=len(splits.classes))
        name = "from_pattern"
    else:
        model = _build_model(name, channels, len(splits.classes))
    if settings["freeze"] and not settings["pretrained"]:
        raise CLIError("--freeze needs --from (the pre-trained weights to keep)")
    if settings["pretrained"]:
        from cnnkit import transfer
        if not args.resume:  # a resumed run restores its own weights from its checkpoint
            report = transfer.load_backbone(model, settings["pretrained"])
            print(f"loaded {len(report.loaded)} pre-trained tensors from {settings['pretrained']}", file=sys.stderr)
        if settings["freeze"]:
            transfer.apply_mode(model, settings["freeze"])
    _print_summary(model, input_size)

    norm = splits.normalize()
    seed = settings["seed"]
    augment = _augmentation(splits.name, input_size) if settings["augment"] else []
    train = DataLoader(splits.train, batch_size=settings["batch_size"], shuffle=True, seed=seed,
                       transform=Compose(augment + [norm]) if augment else norm)
    val = DataLoader(splits.val, batch_size=256, transform=norm) if splits.val is not None else None
    test = DataLoader(splits.test, batch_size=256, transform=norm)
    optimizer = _make_optimizer(settings, model)
    scheduler = _make_scheduler(settings, optimizer)
    run_config = {"classes": list(splits.classes), "input_size": list(input_size),
                  "normalize": {"mean": list(splits.mean), "std": list(splits.std)},
                  "data": {"name": splits.name, "source": settings["data"], "split_seed": SPLIT_SEED,
                           "val_fraction": VAL_FRACTION, "train": len(splits.train),
                           "val": len(splits.val) if splits.val is not None else 0, "test": len(splits.test)},
                  "training": {k: v for k, v in settings.items()}, "prepare": splits.prepare}
    out.mkdir(parents=True, exist_ok=True)
    sizes = run_config["data"]
    _err(f"{'resuming' if args.resume else 'training'} {name} on {splits.name} ({sizes['train']} train / "
         f"{sizes['val']} val / {sizes['test']} test images) -> {out}")
    trainer = Trainer(model, optimizer, scheduler, early_stopping=settings["early_stopping"], out_dir=out,
                      progress=args.progress, run_config=run_config, keep=settings["keep"])
    try:
        history = trainer.fit(train, val, epochs=settings["epochs"], seed=seed, resume=args.resume)
    except DivergedError as exc:
        raise CLIError(str(exc)) from None
    if history.interrupted:
        _err(f"interrupted; continue with: cnnkit train --out {out} --resume")
        return 130
    if settings["keep"] == "best":
        model.load_state_dict(trainer.best_weights)
    kept_epoch = history.best_epoch if settings["keep"] == "best" else trainer.epoch
    result = evaluate(model, test)
    metrics = {"test_accuracy": result.accuracy, "test_loss": result.loss, "test_size": int(len(result.labels)),
               "epochs": len(history), "best_epoch": history.best_epoch, "kept": settings["keep"],
               "kept_epoch": kept_epoch,
               "best_val_accuracy": max((r["val_accuracy"] for r in history.records if "val_accuracy" in r),
                                        default=None),
               "train_seconds": round(history.train_seconds, 3), "stopped_early": history.stopped_early,
               "model": name, "data": splits.name, "seed": trainer.seed}
    from cnnkit.io.atomic import atomic_write
    atomic_write(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    if _want_plots(args.plots):
        from cnnkit.train import plots
        plots.plot_curves(history.records, out / "curves.png", title=f"{name} on {splits.name}")
        plots.plot_confusion(result.confusion_matrix(len(splits.classes)), splits.classes, out / "confusion.png",
                             title=f"{name} on {splits.name} (test, epoch {kept_epoch})")
    _err(f"saved {out}/model.safetensors (epoch {kept_epoch}, {settings['keep']}), config.json, log.jsonl, "
         f"metrics.json"
         f"{', curves.png, confusion.png' if _want_plots(args.plots) else ''} "
         f"in {history.train_seconds:.1f}s of training")
    correct = int((result.labels == result.predictions).sum())
    print(f"test accuracy: {100 * result.accuracy:.2f}% ({correct}/{len(result.labels)}), loss {result.loss:.4f}")
    return 0


def _want_plots(flag) -> bool:
    if flag is False:
        return False
    from cnnkit.train import plots
    if flag is True and not plots.available():
        raise CLIError("--plots needs matplotlib: pip install matplotlib")
    return plots.available()


# ----------------------------------------------------------------------------- evaluate
def cmd_evaluate(args) -> int:
    from cnnkit.data import DataLoader, Normalize
    from cnnkit.train import evaluate, precision_recall
    from cnnkit.train.run import load_run

    run = load_run(args.run)
    data_cfg = run.config.get("data", {})
    source = args.data or data_cfg.get("source") or data_cfg.get("name")
    if source is None:
        raise CLIError(f"{args.run}/config.json names no data set: pass --data")
    root = args.root if args.root is not None else run.config.get("training", {}).get("root")
    splits = _load_splits(source, root, False, run.input_size, channels=run.input_size[0])
    if list(splits.classes) != list(run.classes):
        raise CLIError(f"data {source!r} has classes {splits.classes}, the model was trained on {run.classes}")
    ds = getattr(splits, args.split)
    if ds is None:
        raise CLIError(f"data {source!r} has no {args.split} split")
    loader = DataLoader(ds, batch_size=256, transform=Normalize(run.mean, run.std))
    result = evaluate(run.model, loader)
    k = len(run.classes)
    cm = result.confusion_matrix(k)
    precision, recall, support = precision_recall(cm)
    report = {"run": str(run.path), "model": run.config["model"]["name"], "data": splits.name, "split": args.split,
              "n": int(len(result.labels)), "accuracy": result.accuracy, "loss": result.loss,
              "per_class": [{"class": c, "precision": float(p), "recall": float(r), "support": int(s)}
                            for c, p, r, s in zip(run.classes, precision, recall, support)],
              "classes": run.classes, "confusion_matrix": cm.tolist()}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['model']} from {run.path} on {splits.name} ({args.split}, {report['n']} images)")
    print(f"accuracy {100 * result.accuracy:.2f}%   loss {result.loss:.4f}\n")
    width = max(5, *(len(str(c)) for c in run.classes))
    print(f"{'class':<{width}}  precision  recall  support")
    for row in report["per_class"]:
        print(f"{str(row['class']):<{width}}  {100 * row['precision']:8.2f}%  {100 * row['recall']:5.1f}%"
              f"  {row['support']:7d}")
    print("\nconfusion matrix (rows: true class, columns: predicted)")
    cell = max(len(str(int(cm.max()))), *(len(str(c)) for c in run.classes)) + 1
    print(" " * width + "".join(f"{str(c):>{cell}}" for c in run.classes))
    for c, row in zip(run.classes, cm):
        print(f"{str(c):<{width}}" + "".join(f"{v:>{cell}d}" for v in row))
    return 0


# ----------------------------------------------------------------------------- predict
def cmd_predict(args) -> int:
    from cnnkit.train.run import load_run, predict_proba, prepare_image

    if args.top < 1:
        raise CLIError(f"--top must be at least 1, got {args.top}")
    run = load_run(args.run)
    x = np.stack([prepare_image(p, run.input_size, run.mean, run.std, invert=args.invert,
                                prepare=run.config.get("prepare")) for p in args.images])  # (N, C, H, W)
    probs = predict_proba(run.model, x)                                        # (N, K)
    top = min(args.top, len(run.classes))
    results = []
    for path, p in zip(args.images, probs):
        order = np.argsort(-p, kind="stable")[:top]
        results.append({"image": path, "predictions": [{"class": run.classes[i], "probability": float(p[i])}
                                                       for i in order]})
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        best = ", ".join(f"{q['class']} ({100 * q['probability']:.1f}%)" for q in r["predictions"])
        print(f"{r['image']}: {best}")
    return 0
