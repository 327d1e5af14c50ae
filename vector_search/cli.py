"""The `vector-search` command line: parse arguments, call the engine, print.

Query subcommands answer every query given (arguments and/or --queries-file) in one process.
With --json each answer is one line: {"query": ..., "results": [{"item": ..., "distance": ...}]}
or {"query": ..., "error": "..."}; the exit code is 1 if any query failed. A query or a file name
that is not UTF-8 (bytes, on Linux) is escaped as \\udcXX in JSON: os.fsencode() of the loaded
string gives the exact bytes back; plain output shows such bytes as \\xNN.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from vector_search.answers import Result, answer_json
from vector_search.engine import Engine
from vector_search.errors import VectorSearchError
from vector_search.imaging.encoders import DEFAULT_ENCODER, ENCODER_NAMES
from vector_search.imaging.images import printable
from vector_search.joint import DEFAULT_METHOD, METHODS
from vector_search.search.index import KINDS
from vector_search.store.metadata import Filters
from vector_search.store.spaces import ANNOY_MAX, index_kind
from vector_search.text.query import QueryVector
from vector_search.text.sentences import WordWeight, word_shares
from vector_search.text.words import DEFAULT_INDEX_KIND, EXACT_SCAN_QUERIES, EXACT_SCAN_QUERIES_UNBUILT


class UsageError(VectorSearchError, ValueError):
    """The command line asks for something impossible (no query, k < 1)."""


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
    except (VectorSearchError, OSError) as err:  # the library's errors and file errors: one clear line
        print(f"error: {err}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vector-search", description="Semantic search over images and words, offline.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    p = commands.add_parser("index", help="build or update the feature store and index of an image folder")
    p.add_argument("dataset", metavar="DATASET_DIR")
    _store_options(p)
    _index_options(p)
    _no_wait_option(p, "store")
    p.set_defaults(run=run_index)

    p = commands.add_parser("download", help="download Pascal Sentences (needs internet) into DEST")
    p.add_argument("name", choices=["pascal"], help="the dataset")
    p.add_argument("dest", metavar="DEST", help="folder to download into (resumes an earlier run)")
    p.set_defaults(run=run_download)

    p = commands.add_parser("similar", help="images similar to image files (indexed or not)")
    _query_options(p, "IMAGE")
    _store_options(p)
    p.add_argument("--reweight", metavar="CLASS", help='re-weight features by an ImageNet class: a name ("siamese cat") or an id (517)')
    _filter_options(p)
    p.set_defaults(run=lambda a: run_queries(a, lambda e, q: e.similar_images(q, a.k, reweight=a.reweight, filters=a.filters, min_score=a.min_score)))

    p = commands.add_parser("train", help="train the joint image-word model on the store's cached features")
    _store_options(p)
    _model_option(p)
    p.add_argument("--epochs", type=int, default=50, help="epochs of the hybrid method (default: %(default)s)")
    p.add_argument("--text", choices=("minilm", "glove"), default="minilm",
                   help="text space: the sentence encoder (minilm, default: the sentence method) or GloVe word vectors "
                        f"(glove: captions if the dataset has captions, else {DEFAULT_METHOD})")
    p.add_argument("--method", choices=METHODS, help="joint method (default: chosen by --text)")
    p.add_argument("--holdout-classes", default="", metavar="A,B,...", help="classes left out of training entirely")
    p.add_argument("--seed", type=int, default=0, help="seed of the 80/20 split (default: %(default)s)")
    p.add_argument("--captions", metavar="DIR", help="captions folder, <class>/<id>.txt per photo (default: <dataset>/../sentence if present)")
    p.add_argument("--no-captions", action="store_true", help="train without captions even if the dataset has them")
    _no_wait_option(p, "model")
    p.set_defaults(run=run_train)

    p = commands.add_parser("tag", help="word tags for image files (indexed or not)")
    _query_options(p, "IMAGE", k=5)
    _store_options(p)
    _model_option(p)
    _filter_options(p, scored=False)  # with no photo named, they choose the indexed photos to tag; else those of the named ones
    p.set_defaults(run=lambda a: run_queries(a, lambda e, q: e.tags(q, a.k), chooses=True))

    p = commands.add_parser("search", help="images for text: words, phrases, weighted terms ('cat + sofa - person')")
    _query_options(p, "TEXT")
    _store_options(p)
    _model_option(p)
    _filter_options(p)
    p.set_defaults(run=lambda a: run_queries(a, lambda e, q: _with_words(*e.search_text(q, a.k, filters=a.filters, min_score=a.min_score)), text=True))

    _words_command(commands)

    p = commands.add_parser("serve", help="answer over HTTP: a JSON API (docs at /docs) over the store, loaded once")
    _store_options(p)
    _model_option(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.set_defaults(run=run_serve)

    p = commands.add_parser("evaluate", help="measure search quality on a labelled folder (one subfolder per class)")
    p.add_argument("dataset", nargs="?", metavar="DATASET_DIR", help="index this folder first (default: the store as it is)")
    _store_options(p)
    p.add_argument("--holdout-classes", metavar="A,B,...", help="classes left out of training for zero-shot (default: cat,bus,boat,sheep,sofa)")
    p.add_argument("--seed", type=int, default=0, help="seed of the 80/20 split and of the word-index queries (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.set_defaults(run=run_evaluate)
    return parser


def _words_command(commands) -> None:  # commands: argparse's _SubParsersAction
    p = commands.add_parser(
        "words",
        help="words similar to words or phrases",
        description=f"Words similar to words or phrases. A few queries are answered by an exact scan of the "
        f"vocabulary (milliseconds each, nothing to build or load); from {EXACT_SCAN_QUERIES} queries in one run "
        f"({EXACT_SCAN_QUERIES_UNBUILT} while it is not built yet) the {DEFAULT_INDEX_KIND} index answers sooner: "
        "it is built once per user in the cache folder (about a minute on 2 cores), then loaded.",
    )
    _query_options(p, "WORD_OR_PHRASE")
    p.add_argument("--glove", help="a glove.*.txt file (default: the packaged GloVe 6B 50d)")
    p.set_defaults(run=lambda a: run_queries(a, lambda e, q: e.similar_words(q, a.k), text=True))


def _store_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--features", "--store", dest="features", metavar="DIR",
                   help="feature store folder, one store per encoder inside (default: $VECTOR_SEARCH_FEATURES, else features/)")
    p.add_argument("--encoder", choices=ENCODER_NAMES, help=f"image encoder (default: {DEFAULT_ENCODER})")


def _index_options(p: argparse.ArgumentParser) -> None:
    """How `index` embeds (weights, Ray) and which image index it builds."""
    p.add_argument("--weights", help="encoder weights file (VGG16: the Keras .h5)")
    p.add_argument(
        "--ray", nargs="?", const="", metavar="ADDRESS",
        help="embed on Ray Data: a local Ray, or the cluster at ADDRESS (HEAD:6379) whose nodes all read DATASET_DIR "
        "at the same path (needs pip install -e .[ray])",
    )
    p.add_argument("--index", dest="index_kind", choices=KINDS, help=f"image index kind, recorded in the store (default: annoy below {ANNOY_MAX} photos, else ivf)")


def _filter_options(p: argparse.ArgumentParser, scored: bool = True) -> None:  # which photos (store/metadata.py), how good (calibration.py)
    p.add_argument("--in", dest="folder", metavar="SUBFOLDER", help="only photos under this subfolder of the indexed folder")
    p.add_argument("--after", metavar="DATE", help="only photos taken on or after DATE (EXIF date: 2024-07-14, 2024-07)")
    p.add_argument("--before", metavar="DATE", help="only photos taken on or before DATE")
    p.add_argument("--camera", metavar="TEXT", help='only photos whose camera ("Make Model") contains TEXT, any case')
    if scored:
        p.add_argument("--min-score", type=float, metavar="S", help="drop answers scoring under S (0-1: the share of random pairs farther)")


def _model_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="joint model file (default: models/joint-<encoder>.npz; ConSE if untrained)")


def _no_wait_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--no-wait", dest="wait", action="store_false",
        help=f"fail at once if another process is writing the {what} (default: wait for it, saying so)",
    )


def _query_options(p: argparse.ArgumentParser, metavar: str, k: int = 10) -> None:
    p.add_argument("queries", nargs="*", metavar=metavar)
    p.add_argument("--queries-file", type=Path, help=f"read more queries from a file, one a line, streamed: at most {MAX_QUERIES} "
                   f"lines of at most {MAX_QUERY_BYTES} bytes (a longer line, one with a NUL byte: that query fails, the rest run)")
    p.add_argument("-k", type=int, default=k, help="number of results (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="one JSON object a line")


def _engine(args: argparse.Namespace, queries: int | None = None) -> Engine:
    """The engine the options ask for; `queries` (how many this process answers) lets similar
    words skip the word index for a few queries."""
    return Engine(
        getattr(args, "features", None),
        encoder_name=getattr(args, "encoder", None),
        words_path=getattr(args, "glove", None),
        encoder_weights=getattr(args, "weights", None),
        model_path=getattr(args, "model", None),
        word_queries=queries,
    )


def run_index(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    bar: tqdm | None = None

    def progress(done: int, total: int) -> None:
        """The bar starts at the first batch (`initial`), so photos/s and the ETA leave out the model's build."""
        nonlocal bar
        bar = bar or tqdm(total=total, initial=done, unit="photo", desc="embedding")
        bar.update(done - bar.n)

    engine, embedder = _engine(args), None
    if args.ray is not None:
        from vector_search.imaging.ray_embedding import ray_embedder

        embedder = ray_embedder(engine.encoder_in_use(), args.ray or None, weights=args.weights)
    try:
        report = engine.index(args.dataset, progress, wait=args.wait, index_kind=args.index_kind, embedder=embedder)
    finally:  # an error (a full disk) then prints on a line of its own
        if bar is not None:
            bar.close()
    for note in report.notes:
        print(note)
    print(f"added {len(report.added)}, changed {len(report.changed)}, renamed {len(report.renamed)}, "
          f"unchanged {report.unchanged}, removed {len(report.removed)}, skipped {len(report.skipped)}")
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}")
    print(f"image index: {index_kind(engine.store)} ({'recorded in the store' if engine.store.index_kind else 'chosen by size'})")
    return 0


def run_download(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from vector_search.datasets.pascal import download_pascal_sentences

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
        model = engine.train(args.epochs, holdout, args.method, args.seed, progress, wait=args.wait, captions=captions, text=args.text)
    learnt = model.meta.get("captions")
    with_captions = f" and {learnt['captions']} captions of {learnt['photos']} photos" if learnt else ""
    seconds = model.meta.get("train_seconds")  # (ConSE fits nothing: no time)
    print(f"trained {model.method} on {len(model.classes)} classes{with_captions}{'' if seconds is None else f' in {seconds} s'}; "
          f"saved {engine.joint_model_path()}")
    if holdout:
        print(f"held out: {', '.join(holdout)}")
    return 0


def _class_list(text: str) -> list[str]:
    """`cat, bus,,boat` -> ['cat', 'bus', 'boat']."""
    return [c.strip() for c in text.split(",") if c.strip()]


def run_evaluate(args: argparse.Namespace) -> int:
    from vector_search.evaluation.evaluate import DEFAULT_HOLDOUT, evaluate, format_report

    holdout = DEFAULT_HOLDOUT if args.holdout_classes is None else _class_list(args.holdout_classes)
    progress = None if args.json else (lambda message: print(f"... {message}", file=sys.stderr, flush=True))
    figures = evaluate(_engine(args), args.dataset, holdout, seed=args.seed, progress=progress)
    print(json.dumps(figures, indent=1) if args.json else format_report(figures))
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from vector_search.serving.http import serve

    serve(_engine(args), args.host, args.port, ready=lambda url: print(f"serving on {url} (API docs: {url}/docs)", flush=True))
    return 0


# --queries-file is streamed: answers start at once and memory stays small whatever the file is.
MAX_QUERY_BYTES = 4096  # a longer line is one failed query (its rest is skipped, up to MAX_SKIP_BYTES)
MAX_QUERIES = 100_000  # lines read from --queries-file per run; past them one error line, the rest unread
MAX_SKIP_BYTES = 64 << 20  # a line that goes on past this (/dev/zero) ends the reading of the file


@dataclass(frozen=True)
class BadQuery:
    """A --queries-file line that is not answered, and why (reported like a failed query)."""

    query: str
    reason: str


def read_queries(args: argparse.Namespace) -> Iterator[str | BadQuery]:
    """The queries: arguments, then the lines of --queries-file, streamed (see MAX_*).

    The file is read as bytes and each line decoded like a file name (os.fsdecode: invalid UTF-8
    bytes become lone surrogates), so a line that is not UTF-8 is still a query (a photo named in
    Latin-1 is found) and never aborts the batch. Arguments arrive decoded the same way.
    """
    yield from args.queries
    if args.queries_file:
        yield from _file_queries(args.queries_file)


def _file_queries(path: Path) -> Iterator[str | BadQuery]:
    with open(path, "rb") as f:
        for number in range(1, MAX_QUERIES + 1):
            line = f.readline(MAX_QUERY_BYTES + 1)
            if not line:
                return
            if len(line) <= MAX_QUERY_BYTES or line.endswith(b"\n"):
                yield os.fsdecode(line.rstrip(b"\r\n"))
                continue
            skipped = 0
            while not line.endswith(b"\n") and line and skipped < MAX_SKIP_BYTES:
                line = f.readline(1 << 16)
                skipped += len(line)
            yield BadQuery(f"{path}:{number}", f"line longer than {MAX_QUERY_BYTES} bytes: skipped")
            if skipped >= MAX_SKIP_BYTES:
                yield BadQuery(f"{path}:{number}", f"the line never ends: the rest of {path} is not read")
                return
        if f.read(1):
            yield BadQuery(f"{path}:{MAX_QUERIES + 1}", f"more than {MAX_QUERIES} lines: the rest of {path} is not read")


Answer = list[Result] | tuple[list[Result], dict]  # results, and fields added to a --json line


def run_queries(args: argparse.Namespace, answer: Callable[[Engine, str], Answer], text: bool = False, chooses: bool = False) -> int:
    """Answer each query, printing as we go; a failed query is reported and the rest still run. `text`: queries are
    words, never file names (a line not UTF-8 is refused). `chooses`: the filters choose the photos (Engine.photos)."""
    if args.k < 1:
        raise UsageError("-k must be at least 1")
    if hasattr(args, "folder"):
        args.filters = Filters.of(args.folder, args.after, args.before, args.camera)
    queries = read_queries(args)
    ahead = list(itertools.islice(queries, EXACT_SCAN_QUERIES_UNBUILT + 1))  # how many, when few (words.index_kind_for)
    chosen = chooses and args.filters is not None
    if not ahead and not chosen:
        raise UsageError("no query given: pass queries as arguments or with --queries-file" + (" (or --in/--after/--before/--camera)" * chooses))
    engine, failed = _engine(args, len(ahead)), 0
    stream = itertools.chain(ahead, queries)
    for query in engine.photos(args.filters, stream if ahead else None) if chosen else stream:
        try:
            if isinstance(query, BadQuery):
                raise UsageError(query.reason)
            if "\0" in query:
                raise UsageError("a query cannot hold a NUL byte")
            if text and query != query.encode("utf-8", "replace").decode("utf-8"):
                raise UsageError("the query is not UTF-8 text")
            results = answer(engine, query)
        except (VectorSearchError, OSError) as err:  # anything else is a bug: its traceback is wanted
            failed += 1
            _print_error(args.json, query.query if isinstance(query, BadQuery) else query, str(err))
            continue
        results, extra = results if isinstance(results, tuple) else (results, {})
        _print_results(args.json, query, results, extra)
    return 1 if failed else 0


def _with_words(results: list[Result], parsed: QueryVector) -> Answer:
    """A text search's results with the words that counted: "words": [{"word", "weight"[, "reaches"]}]."""
    return results, {"words": [w.as_dict() for w in parsed.words]}


def _print_results(as_json: bool, query: str, results: list[Result], extra: dict) -> None:
    if as_json:  # JSON escapes a name's undecodable bytes as \udcXX: os.fsencode(loaded) gives the bytes back
        print(json.dumps(answer_json(query, results, extra)), flush=True)
        return
    print(f"{printable(query)}:")
    if extra.get("words"):
        print("  words: " + word_shares([WordWeight(**w) for w in extra["words"]]))
    for rank, r in enumerate(results, 1):
        print(f"  {rank:3d}. {r.distance:.4f}  " + ("" if r.score is None else f"score {r.score:.3f}  ") + printable(r.item))
    if not results:
        print("  no good match")


def _print_error(as_json: bool, query: str, message: str) -> None:
    if as_json:
        print(json.dumps({"query": query, "error": message}), flush=True)
    else:
        print(f"{printable(query)}: error: {printable(message)}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
