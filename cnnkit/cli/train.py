"""``cnnkit train``, ``cnnkit evaluate`` and ``cnnkit predict``: arguments into the library's recipe
(:class:`cnnkit.train.TrainConfig`, :func:`cnnkit.train.prepare` / ``run``, :func:`cnnkit.train.evaluate_run`,
:func:`cnnkit.train.predict_files`), results printed.

Results go to stdout (the model summary first, the test accuracy last; with ``--json`` only the final
metrics); progress and epoch lines go to stderr. A run directory holds ``model.safetensors``,
``config.json``, ``log.jsonl``, ``metrics.json``, ``checkpoint.safetensors`` (for ``--resume``) and, with
``--plots``, ``curves.png`` and ``confusion.png``.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

from ..train.config import OPTIMIZERS, SCHEDULERS, TrainConfig
from . import CLIError
from .output import to_json

DATA_HELP = "digits (built-in, default), faces (built-in), mnist-5k (built-in), mnist, fashion-mnist, cifar10, " \
            "or a folder PATH with one sub-folder of images per class"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a model on a data set (default: LeNet-5 on the built-in digits)",
        description="Train a classifier. With no arguments: lenet5 on the built-in handwritten digits, 40 epochs "
                    "(5-30 s of training on a 2-core CPU; the first run after an install adds 10-15 s while Numba "
                    "compiles its loops), about 99% test accuracy, files in runs/lenet5-digits. The model summary "
                    "is printed first and the test accuracy last (--json: only the final metrics, as JSON).")
    p.add_argument("model", nargs="?", metavar="MODEL",
                   help="model name from the zoo (default: lenet5; see `cnnkit models`), or a layer pattern "
                        "such as 'INPUT -> [CONV -> RELU -> POOL]*2 -> FC -> RELU -> FC'")
    p.add_argument("--data", metavar="NAME|PATH", help=DATA_HELP)
    p.add_argument("--root", metavar="DIR", help="folder holding (or receiving) mnist/fashion-mnist/cifar10 "
                                                 "(default: $CNNKIT_HOME/datasets or ~/.cache/cnnkit/datasets)")
    p.add_argument("--download", action="store_true", default=None,
                   help="download a missing data set (SHA-256 verified)")
    p.add_argument("--epochs", type=int, metavar="N", help=f"epochs (default {TrainConfig.epochs})")
    p.add_argument("--batch-size", type=int, metavar="N", help=f"batch size (default {TrainConfig.batch_size})")
    p.add_argument("--optimizer", choices=list(OPTIMIZERS), help="optimiser (default sgd with momentum 0.9)")
    p.add_argument("--lr", type=float, help="learning rate (default: adam/rmsprop 1e-3, sgd 0.05 (0.02 on mnist-5k "
                                            "and for layer patterns), adagrad 0.01)")
    p.add_argument("--momentum", type=float, help="momentum for sgd and rmsprop (default 0.9 for sgd, 0 rmsprop)")
    p.add_argument("--weight-decay", type=float, help="L2 weight decay (default 5e-4)")
    p.add_argument("--scheduler", choices=list(SCHEDULERS),
                   help="learning-rate schedule over the epochs (default cosine; step: x0.1 after each third of "
                        "the epochs)")
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
    p.add_argument("--json", action="store_true",
                   help="print only the final metrics, as JSON, on stdout (the summary and progress go to stderr)")
    p.set_defaults(func=cmd_train)

    e = subparsers.add_parser("evaluate", help="accuracy, per-class precision/recall and confusion matrix of a run",
                              description="Evaluate a trained run on the test split of its data set (or --data).")
    e.add_argument("run", metavar="DIR", help="run directory written by `cnnkit train`")
    e.add_argument("--data", metavar="NAME|PATH", help="data set to evaluate on (default: the run's); " + DATA_HELP)
    e.add_argument("--root", metavar="DIR", help="folder holding mnist/fashion-mnist/cifar10")
    e.add_argument("--split", choices=["test", "val", "train"], default="test", help="which split (default test)")
    e.add_argument("--json", action="store_true", help="JSON: accuracy, loss, per-class precision/recall/support "
                                                       "and the confusion matrix")
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
    q.add_argument("--json", action="store_true", help="JSON: per image its top classes with their probabilities")
    q.set_defaults(func=cmd_predict)


# ----------------------------------------------------------------------------- train
def _config(args) -> TrainConfig:
    """The command line as a TrainConfig: the options given; for --resume, the run's saved settings."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
             if f.name not in ("resume", "out") and getattr(args, f.name, None) is not None}
    from ..train import resume_config
    return resume_config(args.out, **given) if args.resume else TrainConfig(**given, out=args.out)


def cmd_train(args) -> int:
    from ..train import DivergedError, prepare

    prepared = prepare(_config(args))
    # --json: the final metrics are stdout's only line, the summary goes to stderr with the progress
    print(prepared.summary(), file=sys.stderr if args.json else sys.stdout, flush=True)
    try:
        result = prepared.run()
    except DivergedError as exc:
        raise CLIError(str(exc)) from None
    if result.interrupted:
        print(f"interrupted; continue with: cnnkit train --out {result.run_dir} --resume", file=sys.stderr, flush=True)
        return 130
    ev = result.evaluation
    correct = int((ev.labels == ev.predictions).sum())
    if args.json:
        sys.stdout.write(to_json({"run_dir": str(result.run_dir), **result.metrics, "test_correct": correct}))
        return 0
    print(f"test accuracy: {100 * ev.accuracy:.2f}% ({correct}/{len(ev.labels)}), loss {ev.loss:.4f}")
    return 0


# ----------------------------------------------------------------------------- evaluate
def cmd_evaluate(args) -> int:
    from ..train import evaluate_run

    report = evaluate_run(args.run, args.data, root=args.root, split=args.split)
    if args.json:
        sys.stdout.write(to_json(report))
        return 0
    classes, cm = report["classes"], report["confusion_matrix"]
    print(f"{report['model']} from {report['run']} on {report['data']} ({args.split}, {report['n']} images)")
    print(f"accuracy {100 * report['accuracy']:.2f}%   loss {report['loss']:.4f}\n")
    width = max(5, *(len(str(c)) for c in classes))
    print(f"{'class':<{width}}  precision   recall  support")
    for row in report["per_class"]:
        print(f"{str(row['class']):<{width}}  {100 * row['precision']:8.2f}%  {100 * row['recall']:6.2f}%"
              f"  {row['support']:7d}")
    print("\nconfusion matrix (rows: true class, columns: predicted)")
    cell = max(len(str(max(max(r) for r in cm))), *(len(str(c)) for c in classes)) + 1
    print(" " * width + "".join(f"{str(c):>{cell}}" for c in classes))
    for c, row in zip(classes, cm):
        print(f"{str(c):<{width}}" + "".join(f"{v:>{cell}d}" for v in row))
    return 0


# ----------------------------------------------------------------------------- predict
def cmd_predict(args) -> int:
    from ..train import predict_files

    results = predict_files(args.run, args.images, top=args.top, invert=args.invert)
    if args.json:
        sys.stdout.write(to_json(results))
        return 0
    for r in results:
        best = ", ".join(f"{q['class']} ({100 * q['probability']:.1f}%)" for q in r["predictions"])
        print(f"{r['image']}: {best}")
    return 0
