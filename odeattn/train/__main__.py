"""``python -m odeattn.train``: train one model on one dataset with a named recipe.

Usage::

    python -m odeattn.train (--model NAME | --arch FILE) [--data NAME] [--root DIR]
        [--recipe NAME] [--epochs N] [--batch-size B] [--lr LR] [--seed S] [--device DEV]
        [--val-fraction F] [--set KEY=VALUE ...] [--out DIR] [--resume] [--no-progress]

``--model NAME`` builds ``create_model(NAME, num_classes=…, in_channels=…)`` for the dataset.
``--arch FILE`` reads a YAML document of this form (what the search exports as
``runs/<study>/best/*.yaml``)::

    model:                 # required: model.architecture(), i.e. create_model(**model)
      name: digits_resnet
      blocks: [2, 2, 2]
      ...
    train:                 # optional: recipe name + TrainConfig fields overriding it
      recipe: digits
      lr: 0.05
    data:                  # optional: load_dataset arguments
      name: digits
      val_fraction: 0.1
      seed: 0

A bare architecture mapping (top-level ``name:``) is accepted too. Command-line flags override
the file. ``--epochs N`` stretches the recipe (milestones, warm-up scale with it); ``--set``
overrides any TrainConfig field (``--set label_smoothing=0.1``). The default recipe is ``digits``
for digits/synthetic, ``odenet_mnist`` for (Fashion-)MNIST and ``resnet164_cifar`` otherwise.

Writes to ``--out`` (default ``runs/train/<model>-<data>``): ``log.jsonl`` (one JSON object per
epoch, then a final one with test metrics), ``checkpoint.pt`` (every epoch, atomically; see
``odeattn.train.load_checkpoint``) and ``model.yaml`` (the ``--arch`` form of this run).
A folder holds one run: architecture, data and every training setting that changes the result
(``odeattn.train._run_dir.identity``). A run never writes over another: the default folder gets a
``-2``, ``-3``, … suffix when it holds another run, and such an explicit ``--out`` is refused,
naming what differs. The same run again is "finished" when it is, and needs ``--resume`` when it
stopped after a checkpoint. ``--resume`` continues from ``OUT/checkpoint.pt``, checked first
(readable, same architecture); ``log.jsonl`` is cut back to the epochs that checkpoint holds (a
kill can leave it one epoch ahead, or torn). Bad input (a corrupt or mismatched checkpoint
included) exits with status 2 and one line, before anything is written; Ctrl-C exits 130.
``ODEATTN_THREADS=N`` sets torch's threads (``odeattn.train.threads_from_env``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import torch
import yaml
from tqdm import tqdm

from odeattn.data import DatasetFileError, load_dataset
from odeattn.models import create_model, plain, remove_stale_tmp
from odeattn.train import threads_from_env
from odeattn.train._loop import RECIPES, Diverged, TrainConfig, fit
from odeattn.train._run_dir import UsageError, checked_checkpoint, free_out, rewrite_log, status

_DEFAULT_RECIPE = {
    "digits": "digits",
    "synthetic": "digits",
    "mnist": "odenet_mnist",
    "fashion_mnist": "odenet_mnist",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, status 2 (argparse prints the usage block too)
        self.exit(2, f"error: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m odeattn.train", description="Train one model.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="model name (see odeattn.models.list_models())")
    src.add_argument(
        "--arch", type=Path, help="YAML file: model: architecture, optional train:/data:"
    )
    p.add_argument("--data", help="dataset name (default: from --arch, else digits)")
    p.add_argument("--root", help="data root for file datasets (default $ODEATTN_DATA or ./data)")
    p.add_argument("--recipe", help="training recipe (odeattn.train.RECIPES)")
    p.add_argument("--epochs", type=int, help="number of epochs (the schedule is stretched)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="cpu, cuda, cuda:1, ... (default auto)")
    p.add_argument("--val-fraction", type=float)
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a TrainConfig field (YAML value), repeatable",
    )
    p.add_argument("--out", type=Path, help="output directory (default runs/train/<model>-<data>)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _read_arch(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UsageError(f"--arch: file {str(path)!r} does not exist")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise UsageError(f"--arch: {path} is not valid YAML ({str(e).splitlines()[0]})") from e
    if isinstance(doc, dict) and "model" not in doc and "name" in doc:
        doc = {"model": doc}
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("model"), dict)
        or "name" not in doc["model"]
    ):
        raise UsageError(
            f"--arch: {path} must hold a `model:` mapping with a `name` (model.architecture())"
        )
    extra = set(doc) - {"model", "train", "data", "search"}  # `search`: where an export came from
    for key in ("train", "data"):
        if doc.get(key) is not None and not isinstance(doc[key], dict):
            raise UsageError(f"--arch: `{key}:` in {path} must be a mapping")
    doc["_ignored"] = sorted(extra)
    return doc


def _config(args, doc: dict[str, Any], data_name: str):

    train = dict(doc.get("train") or {})
    recipe = (
        args.recipe
        or train.pop("recipe", None)
        or _DEFAULT_RECIPE.get(data_name, "resnet164_cifar")
    )
    train.pop("recipe", None)
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}. Valid: {', '.join(RECIPES)}")
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--set {item!r}: expected KEY=VALUE")
        train[key.strip().replace("-", "_")] = yaml.safe_load(value)
    for key in ("batch_size", "lr", "seed", "device"):
        if getattr(args, key) is not None:
            train[key] = getattr(args, key)
    cfg = TrainConfig.from_dict(train, RECIPES[recipe])
    if args.epochs is not None:
        cfg = cfg.with_epochs(args.epochs)
    return recipe, cfg


def _build(args):
    """(model, data, config, recipe, out dir, document) from the arguments; raises on bad input."""

    doc = _read_arch(args.arch) if args.arch else {"model": None}
    dspec = dict(doc.get("data") or {})
    name = args.data or dspec.pop("name", None) or "digits"
    dspec.pop("name", None)
    if args.root is not None:
        dspec["root"] = args.root
    if args.val_fraction is not None:
        dspec["val_fraction"] = args.val_fraction
    recipe, cfg = _config(args, doc, name)
    data = load_dataset(name, **dspec)
    if args.model:
        model = create_model(
            args.model, num_classes=data.num_classes, in_channels=data.input_shape[0]
        )
    else:
        model = create_model(**doc["model"])
    arch = (
        model.architecture()
        if callable(getattr(model, "architecture", None))
        else {"name": args.model}
    )
    if arch.get("num_classes", data.num_classes) != data.num_classes:
        raise UsageError(
            f"the model has {arch['num_classes']} classes but {name} has {data.num_classes}"
        )
    out = args.out or Path("runs") / "train" / f"{arch.get('name', 'model')}-{name}"
    document = {
        "model": arch,
        "train": {"recipe": recipe, **_changed(cfg, recipe)},
        "data": {"name": name, **{k: str(v) if k == "root" else v for k, v in dspec.items()}},
    }
    return model, data, cfg, out, document, doc.get("_ignored", [])


def _changed(cfg, recipe: str) -> dict[str, Any]:

    base = dataclasses.asdict(RECIPES[recipe])
    return plain({k: v for k, v in dataclasses.asdict(cfg).items() if base[k] != v}, "train")


def _line(m: dict[str, Any], epochs: int) -> str:
    s = f"epoch {m['epoch']:>3}/{epochs}  loss {m['train_loss']:.4f}  top-1 {100 * m['train_accuracy']:.2f}%"
    if "val_accuracy" in m:
        s += f"  val loss {m['val_loss']:.4f}  val top-1 {100 * m['val_accuracy']:.2f}%"
    if "val_top5" in m:
        s += f"  val top-5 {100 * m['val_top5']:.2f}%"
    return s + f"  {m['images_per_s']:.0f} img/s  {m['epoch_time_s']:.1f}s"


def _prepare(args):
    """Everything that can fail on bad input, before any training starts."""

    threads = threads_from_env()
    if threads is not None:
        torch.set_num_threads(threads)
    model, data, cfg, out, document, ignored = _build(args)
    out = free_out(out, document, explicit=args.out is not None)
    ckpt = out / "checkpoint.pt"
    start, history = 0, []
    if args.resume and not ckpt.is_file():
        raise UsageError(f"--resume: no checkpoint at {ckpt}; run without --resume first")
    if args.resume:
        start, history = checked_checkpoint(ckpt, model)
    finished = status(out, cfg.epochs)
    if finished is None and not args.resume and ckpt.is_file():
        raise UsageError(
            f"{out} holds this run, stopped before its end (checkpoint.pt); add --resume to "
            f"continue it, or delete {out} to start over"
        )
    return model, data, cfg, out, document, ignored, start, history, finished


def _report_final(final: dict[str, Any], ckpt: Path) -> None:
    if "test_accuracy" in final:
        print(
            f"test loss {final['test_loss']:.4f}  test top-1 {100 * final['test_accuracy']:.2f}%"
            + (f"  test top-5 {100 * final['test_top5']:.2f}%" if "test_top5" in final else "")
        )
    print(f"checkpoint: {ckpt}")


def _run(args, model, data, cfg, out, document, ignored, start, history, finished) -> int:

    ckpt, log = out / "checkpoint.pt", out / "log.jsonl"
    if finished is not None:
        print(f"{out} holds this run, finished ({cfg.epochs} epochs): nothing to do")
        _report_final(finished, ckpt)
        return 0
    out.mkdir(parents=True, exist_ok=True)
    for path in (ckpt, log):  # what a kill during an atomic write left
        remove_stale_tmp(path)
    if args.resume:
        rewrite_log(log, history, start)
    (out / "model.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    if ignored:
        print(f"note: ignoring top-level key(s) {ignored} of {args.arch}", file=sys.stderr)
    bar = tqdm(
        total=cfg.epochs, initial=start, unit="epoch", disable=args.no_progress, file=sys.stderr
    )
    with open(log, "a" if args.resume else "w") as f:

        def report(epoch: int, m: dict[str, float]) -> bool:
            f.write(json.dumps(m) + "\n")
            f.flush()
            bar.write(_line(m, cfg.epochs), file=sys.stdout)
            sys.stdout.flush()  # a line per epoch also when stdout is a file or a pipe
            bar.update(1)
            return False

        try:
            final = fit(
                model, data, cfg, report, checkpoint=ckpt, resume=ckpt if args.resume else None
            )
        except Diverged as e:
            bar.close()
            print(f"error: {e}", file=sys.stderr)
            return 1
        bar.close()
        f.write(json.dumps({"final": True, **final}) + "\n")
    _report_final(final, ckpt)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    try:
        prepared = _prepare(args)
    except (UsageError, ValueError, TypeError, FileNotFoundError, DatasetFileError) as e:
        msg = " ".join(str(e).split())
        print(f"error: {msg}", file=sys.stderr)
        return 2
    try:
        return _run(args, *prepared)
    except KeyboardInterrupt:
        print("interrupted; re-run the same command with --resume to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
