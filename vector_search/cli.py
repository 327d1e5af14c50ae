"""The `vector-search` command line: parse arguments, call the engine, print.

Query subcommands answer every query given (arguments and/or --queries-file) in one process.
With --json each answer is one line: {"query": ..., "results": [{"item": ..., "distance": ...}]}
or {"query": ..., "error": "..."}; the exit code is 1 if any query failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Callable, Sequence

from .encoders import DEFAULT_ENCODER, ENCODER_NAMES
from .engine import Engine, Result
from .joint import DEFAULT_METHOD, METHODS
from .query import QueryVector


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # non-UTF-8 file names must print, not crash
        stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    logging.basicConfig(format="%(message)s")
    logging.getLogger("vector_search").setLevel(logging.INFO)  # e.g. "building the ... index (once)"
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, RuntimeError, ValueError) as err:  # setup errors: one clear line
        print(f"error: {err}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vector-search", description="Semantic search over images and words, offline.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    p = commands.add_parser("index", help="build or update the feature store and index of an image folder")
    p.add_argument("dataset", metavar="DATASET_DIR")
    _store_options(p)
    p.add_argument("--weights", help="encoder weights file (VGG16: the Keras .h5)")
    p.set_defaults(run=run_index)

    p = commands.add_parser("download", help="download Pascal Sentences (needs internet) into DEST")
    p.add_argument("name", choices=["pascal"], help="the dataset")
    p.add_argument("dest", metavar="DEST", help="folder to download into (resumes an earlier run)")
    p.set_defaults(run=run_download)

    p = commands.add_parser("similar", help="images similar to image files (indexed or not)")
    _query_options(p, "IMAGE")
    _store_options(p)
    p.add_argument("--reweight", metavar="CLASS", help='re-weight features by an ImageNet class, e.g. "siamese cat"')
    p.set_defaults(run=lambda a: run_queries(a, lambda e, q: e.similar_images(q, a.k, reweight=a.reweight)))

    p = commands.add_parser("train", help="train the joint image-word model on the store's cached features")
    _store_options(p)
    _model_option(p)
    p.add_argument("--epochs", type=int, default=50, help="epochs of the hybrid method (default: %(default)s)")
    p.add_argument("--method", choices=METHODS, help=f"joint method (default: {DEFAULT_METHOD})")
    p.add_argument("--holdout-classes", default="", metavar="A,B,...", help="classes left out of training entirely")
    p.add_argument("--seed", type=int, default=0, help="seed of the 80/20 split (default: %(default)s)")
    p.add_argument("--captions", metavar="DIR", help="captions folder, <class>/<id>.txt per photo (default: <dataset>/../sentence if present)")
    p.add_argument("--no-captions", action="store_true", help="train without captions even if the dataset has them")
    p.set_defaults(run=run_train)

    p = commands.add_parser("tag", help="word tags for image files (indexed or not)")
    _query_options(p, "IMAGE", k=5)
    _store_options(p)
    _model_option(p)
    p.set_defaults(run=lambda a: run_queries(a, lambda e, q: e.tags(q, a.k)))

    p = commands.add_parser("search", help="images for text: words, phrases, weighted terms ('cat + sofa - person')")
    _query_options(p, "TEXT")
    _store_options(p)
    _model_option(p)
    p.set_defaults(run=lambda a: run_queries(a, lambda e, q: _with_words(*e.search_text(q, a.k))))

    p = commands.add_parser("words", help="words similar to words or phrases")
    _query_options(p, "WORD_OR_PHRASE")
    p.add_argument("--glove", help="a glove.*.txt file (default: the packaged GloVe 6B 50d)")
    p.set_defaults(run=lambda a: run_queries(a, lambda e, q: e.similar_words(q, a.k)))

    p = commands.add_parser("evaluate", help="measure search quality on a labelled folder (one subfolder per class)")
    p.add_argument("dataset", nargs="?", metavar="DATASET_DIR", help="index this folder first (default: the store as it is)")
    _store_options(p)
    p.add_argument("--holdout-classes", metavar="A,B,...", help="classes left out of training for zero-shot (default: cat,bus,boat,sheep,sofa)")
    p.add_argument("--seed", type=int, default=0, help="seed of the 80/20 split and of the word-index queries (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.set_defaults(run=run_evaluate)
    return parser


def _store_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", help="feature store folder (default: $VECTOR_SEARCH_FEATURES, else features/)")
    p.add_argument("--encoder", choices=ENCODER_NAMES, help=f"image encoder (default: {DEFAULT_ENCODER})")


def _model_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="joint model file (default: models/joint-<encoder>.npz; ConSE if untrained)")


def _query_options(p: argparse.ArgumentParser, metavar: str, k: int = 10) -> None:
    p.add_argument("queries", nargs="*", metavar=metavar)
    p.add_argument("--queries-file", type=Path, help="read more queries from a file, one a line")
    p.add_argument("-k", type=int, default=k, help="number of results (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="one JSON object a line")


def _engine(args: argparse.Namespace) -> Engine:
    return Engine(
        getattr(args, "store", None),
        encoder=getattr(args, "encoder", None),
        words=getattr(args, "glove", None),
        encoder_weights=getattr(args, "weights", None),
        model=getattr(args, "model", None),
    )


def run_index(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    bar: tqdm | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        bar = bar or tqdm(total=total, unit="img", desc="embedding")
        bar.update(done - bar.n)

    report = _engine(args).index(args.dataset, progress)
    if bar is not None:
        bar.close()
    for note in report.notes:
        print(note)
    print(
        f"added {len(report.added)}, changed {len(report.changed)}, renamed {len(report.renamed)}, "
        f"unchanged {report.unchanged}, removed {len(report.removed)}, skipped {len(report.skipped)}"
    )
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .datasets import download_pascal_sentences

    with tqdm(unit="photo", desc="downloading") as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        report = download_pascal_sentences(args.dest, progress)
    print(f"downloaded {report.images} photos and {report.sentences} caption files; {report.kept} already there; {len(report.failed)} failed")
    for url, reason in report.failed:
        print(f"failed {url}: {reason}", file=sys.stderr)
    print(f"next: vector-search index {Path(args.dest) / 'dataset'}")
    return 1 if report.failed else 0


def run_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    holdout = _class_list(args.holdout_classes)
    with tqdm(total=args.epochs, unit="epoch", desc="training", disable=args.method != "hybrid") as bar:
        def progress(epoch: int, logs: dict) -> None:
            bar.set_postfix(loss=f"{logs['loss']:.4f}", val_loss=f"{logs['val_loss']:.4f}")
            bar.update(1)

        engine = _engine(args)
        captions = False if args.no_captions else (args.captions or True)
        model = engine.train(args.epochs, holdout, args.method, args.seed, progress, captions)
    learnt = model.meta.get("captions")
    with_captions = f" and {learnt['captions']} captions of {learnt['photos']} photos" if learnt else ""
    print(f"trained {model.method} on {len(model.classes)} classes{with_captions} in {model.meta['train_seconds']} s; "
          f"saved {engine.joint_model_path()}")
    if holdout:
        print(f"held out: {', '.join(holdout)}")
    return 0


def _class_list(text: str) -> list[str]:
    """`cat, bus,,boat` -> ['cat', 'bus', 'boat']."""
    return [c.strip() for c in text.split(",") if c.strip()]


def run_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import DEFAULT_HOLDOUT, evaluate, format_report

    holdout = DEFAULT_HOLDOUT if args.holdout_classes is None else _class_list(args.holdout_classes)
    progress = None if args.json else (lambda message: print(f"... {message}", file=sys.stderr, flush=True))
    figures = evaluate(_engine(args), args.dataset, holdout, seed=args.seed, progress=progress)
    print(json.dumps(figures, indent=1) if args.json else format_report(figures))
    return 0


def read_queries(args: argparse.Namespace) -> list[str]:
    queries = list(args.queries)
    if args.queries_file:
        queries += args.queries_file.read_text(encoding="utf-8").splitlines()
    if not queries:
        raise ValueError("no query given: pass queries as arguments or with --queries-file")
    return queries


Answer = list[Result] | tuple[list[Result], dict]  # results, and fields added to a --json line


def run_queries(args: argparse.Namespace, answer: Callable[[Engine, str], Answer]) -> int:
    """Answer each query, printing as we go; a failed query is reported and the rest still run."""
    if args.k < 1:
        raise ValueError("-k must be at least 1")
    engine = _engine(args)
    failed = 0
    for query in read_queries(args):
        try:
            results = answer(engine, query)
        except (KeyError, ValueError, OSError, RuntimeError) as err:  # our errors all derive from these
            failed += 1
            _print_error(args.json, query, str(err))  # UnknownWordError (a KeyError) prints its message plainly
            continue
        results, extra = results if isinstance(results, tuple) else (results, {})
        _print_results(args.json, query, results, extra)
    return 1 if failed else 0


def _with_words(results: list[Result], parsed: QueryVector) -> Answer:
    """A text search's results with the words that counted: "words": [{"word", "weight"[, "reaches"]}]."""
    return results, {"words": [w.as_dict() for w in parsed.words]}


def _print_results(as_json: bool, query: str, results: list[Result], extra: dict) -> None:
    if as_json:
        rows = [{"item": r.item, "distance": round(r.distance, 6)} for r in results]
        print(json.dumps({"query": query, "results": rows, **extra}), flush=True)
        return
    print(f"{query}:")
    if extra.get("words"):
        print("  words: " + ", ".join(_word_text(w) for w in extra["words"]))
    for rank, r in enumerate(results, 1):
        print(f"  {rank:3d}. {r.distance:.4f}  {r.item}")


def _word_text(word: dict) -> str:
    """`plane 0.81 (-> aeroplane)`."""
    return f"{word['word']} {word['weight']:.2f}" + (f" (-> {word['reaches']})" if "reaches" in word else "")


def _print_error(as_json: bool, query: str, message: str) -> None:
    if as_json:
        print(json.dumps({"query": query, "error": message}), flush=True)
    else:
        print(f"{query}: error: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
