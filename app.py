"""The vector_search walkthrough, interactive: `streamlit run app.py`.

A thin UI over the library: every answer comes from a library call (mostly the `Engine`).
Expensive things (engines, models, indexes, word vectors) are loaded once per server with
`st.cache_resource`; each section is a fragment, so typing in one box reruns only that section.

Settings live in the sidebar; the environment sets their defaults:
    VECTOR_SEARCH_DATASET    the image folder (<folder>/<class>/<image>)
    VECTOR_SEARCH_FEATURES   the feature store folder (default: features/)
Behind a URL (README, "Serving it"):
    VECTOR_SEARCH_ROOT       the only folder visitors may name (datasets and stores under it)
    VECTOR_SEARCH_READONLY   1: serve what is indexed; no control that writes is shown
"""

from __future__ import annotations

import io
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import streamlit as st

from vector_search import config, serving
from vector_search.datasets import gallery
from vector_search.datasets import pascal as datasets
from vector_search.engine import Engine, Result
from vector_search.errors import VectorSearchError
from vector_search.imaging import imagenet
from vector_search.imaging.encoders import DEFAULT_ENCODER, ENCODER_NAMES, encoders_help
from vector_search.imaging.images import IMAGE_EXTENSIONS, ImageError, class_of, load_image
from vector_search.progress import Rate
from vector_search.store.updates import UpdateReport

TEXT_EXAMPLES = ("ocean", "street", "tree", "cat sofa", "cat + sofa - person", "2:dog + grass")
log = logging.getLogger("vector_search.app")


# --- settings -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    dataset: str
    encoder: str
    k: int
    features: str
    use_gallery: bool


def sidebar() -> Settings:
    with st.sidebar:
        st.header("Settings")
        dataset = st.text_input(
            "Dataset folder", str(config.default_dataset()), key="dataset", help="A folder laid out as <folder>/<class>/<image>.jpg"
        )
        encoder = st.selectbox(
            "Image encoder",
            ENCODER_NAMES,
            index=ENCODER_NAMES.index(DEFAULT_ENCODER),
            key="encoder",
            help=encoders_help(),
        )
        k = st.slider("Results per query (k)", 1, 30, 8, key="k")
        features = st.text_input(
            "Feature store folder", str(config.features_root()), key="features", help="Where vectors and indexes are saved"
        )
        use_gallery = st.checkbox(
            "Use the built-in gallery instead", key="use_gallery", help="9 sample photos shipped with scikit-image"
        )
        st.caption("Models, indexes and word vectors load once per server; queries then take milliseconds.")
    return Settings(dataset.strip(), encoder, k, features.strip() or str(config.features_root()), use_gallery)


def allowed(settings: Settings) -> Settings:
    """The settings with both folders checked against the server's root (serving.check_allowed);
    a folder outside it stops the page with one line saying so. On a laptop (no root) as typed."""
    if config.serve_root() is None:
        return settings
    try:
        dataset = serving.check_allowed(settings.dataset, "dataset folder")
        features = serving.check_allowed(settings.features, "feature store folder")
    except serving.PathNotAllowedError as err:
        st.error(str(err))
        st.stop()
    return Settings(str(dataset), settings.encoder, settings.k, str(features), settings.use_gallery)


# --- cached resources -------------------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def get_engine(store_root: str, encoder: str) -> Engine:
    return Engine(store_root, encoder_name=encoder)


@st.cache_resource(show_spinner=False)
def indexed(store_root: str, encoder: str) -> dict:
    """Folders already indexed (or checked) by this server: folder -> UpdateReport."""
    return {}


@st.cache_resource(show_spinner="Exporting the gallery photos…")
def export_gallery(store_root: str) -> str:
    return str(gallery.export_gallery(gallery.gallery_photos_dir(store_root)))


@st.cache_resource(show_spinner=False, ttl=30)
def summarize(folder: str) -> datasets.DatasetSummary | None:
    """The folder's images by class; None when there is no such folder. A shared resource (read
    only), not cached data: cached data is unpickled on every call, all N paths of a big folder."""
    try:
        return datasets.summarize(folder)
    except FileNotFoundError:
        return None


@st.cache_data(show_spinner=False, max_entries=32, ttl=60)
def similar_images(store_root: str, encoder: str, fingerprint: str, photo: str | bytes, k: int, reweight: int | None) -> list[Result]:
    """Section 3's answers, once per store state (`fingerprint`), photo, k and class: a rerun that
    changes none of them does not search again (a re-weighted search scans every vector, seconds
    at 200k photos). The ttl drops photos deleted since from the answers within a minute."""
    return get_engine(store_root, encoder).similar_images(as_query(photo), k, reweight=reweight)


@st.cache_data(show_spinner="Making thumbnails…", max_entries=4)
def thumbnail_uris(paths: tuple[str, ...]) -> list[str]:
    return [datasets.thumbnail_uri(p) for p in paths]


# --- page helpers -----------------------------------------------------------------------------------


def once_per_tick(ticked: bool, memo: str, run: tuple) -> bool:
    """Whether a ticked action box acts now: once per tick (or per change of `run`), not on every
    rerun while it stays ticked. The caller records `st.session_state[memo] = run` when done."""
    if not ticked:
        st.session_state.pop(memo, None)
        return False
    return st.session_state.get(memo) != run


def message(err: BaseException) -> str:
    """An exception as one line for the page: the library's errors and file errors say it all;
    anything else is a bug, named by its type."""
    if isinstance(err, (VectorSearchError, OSError)):
        return str(err)
    return f"{type(err).__name__}: {err}"


@contextmanager
def guard(what: str) -> Iterator[None]:
    """Turn any error inside into a message on the page (and a traceback in the server log)."""
    try:
        yield
    except Exception as err:  # Streamlit's own control flow (rerun, stop) is not an Exception
        log.exception("%s failed", what)
        st.error(f"{what}: {message(err)}")


@dataclass(frozen=True)
class Source:
    """The photos the walkthrough runs on: the dataset folder, or the built-in gallery."""

    folder: str
    store_root: str
    encoder: str

    @property
    def engine(self) -> Engine:
        return get_engine(self.store_root, self.encoder)

    def default_photo(self) -> str:
        candidates = [os.path.join(self.folder, datasets.NOISY_EXAMPLE)]
        candidates += [str(gallery.photo_path(self.folder, p)) for p in gallery.PHOTOS]
        store = self.engine.store
        found = (i for i in map(store.find, candidates) if i is not None)  # a lookup, not a scan of all paths
        return store.paths[next(found, 0)]

    def photo_choices(self) -> list[str]:
        """The photos pickers offer: a sample of the store (all of a small one), with the default."""
        store, overview = self.engine.store, self.engine.current().overview
        rows = set(overview.photos.tolist())
        rows.add(store.find(self.default_photo()) or 0)
        return [store.paths[i] for i in sorted(rows)]

    def label(self, path: str) -> str:
        return os.path.relpath(path, self.folder)


# Photo grids show square crops (CSS object-fit), so rows line up whatever the photos' shapes.
GRID_STYLE = """<style>
[class*="st-key-grid-"] [data-testid="stImageContainer"] img { aspect-ratio: 1 / 1; object-fit: cover; }
</style>"""


def photo_grid(key: str, paths: list[str], captions: list[str], width: int = 150) -> None:
    """Photos in rows of square crops, each with its caption."""
    with st.container(key=f"grid-{key}"):
        st.image(paths, caption=captions, width=width)


def grid(key: str, results: list[Result], width: int = 150) -> None:
    """Result photos with their class and distance."""
    if not results:
        st.info("No results.")
        return
    photo_grid(key, [r.item for r in results], [f"{class_of(r.item)} · {r.distance:.3f}" for r in results], width)


def photo_picker(source: Source, key: str) -> tuple[str | bytes, str] | None:
    """A dataset photo (path) or an uploaded one (bytes, decoded in memory), and its label.

    None (with a message) when the upload is not a usable image.
    """
    paths = source.photo_choices()
    total = len(source.engine.store)
    left, right = st.columns([3, 2])
    choice = left.selectbox(
        "A photo from the dataset" if len(paths) >= total else f"A photo from the dataset ({len(paths):,} of {total:,})",
        paths,
        index=paths.index(source.default_photo()),
        format_func=source.label,
        key=f"{key}_photo",
    )
    upload = right.file_uploader(
        "…or your own photo", type=sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS), key=f"{key}_upload"
    )
    if upload is not None:
        data = upload.getvalue()
        try:
            load_image(io.BytesIO(data))  # check it decodes, in memory; the upload is never written to disk
        except ImageError as err:
            st.error(f"{upload.name}: {err}")
            return None
        return data, f"your photo ({upload.name})"
    return choice, source.label(choice)


def as_query(photo: str | bytes) -> str | io.BytesIO:
    return io.BytesIO(photo) if isinstance(photo, bytes) else photo


# --- the sections -----------------------------------------------------------------------------------


def dataset_section(settings: Settings) -> Source | None:
    st.header("1. The dataset")
    with guard("Dataset"):
        summary = None if settings.use_gallery else summarize(settings.dataset)
        if summary is not None and summary.n_images:
            describe_dataset(summary)
            return Source(settings.dataset, settings.features, settings.encoder)
        if not settings.use_gallery:
            what = "no folder" if summary is None else "no images in the folder"
            if config.read_only():
                st.warning(f"There is {what} `{settings.dataset}` on this server.")
                return None
            st.warning(f"There is {what} `{settings.dataset}`: the walkthrough runs on the built-in gallery below.")
            st.markdown(datasets.HOW_TO_GET_DATA.format(url=datasets.PASCAL_URL))
        folder = str(gallery.gallery_photos_dir(settings.features)) if config.read_only() else export_gallery(settings.features)
        if summarize(folder) is None:  # read-only, and never exported
            st.warning("The built-in gallery is not set up on this server.")
            return None
        describe_gallery(summarize(folder))
        return Source(folder, str(gallery.gallery_store_root(settings.features)), settings.encoder)
    return None


def describe_dataset(summary: datasets.DatasetSummary) -> None:
    if summary.looks_like_pascal:
        st.markdown(
            "The photos come from **Pascal Sentences** (Rashtchian, Young, Hodosh and Hockenmaier, 2010): "
            "Pascal VOC 2008 photos from Flickr, 50 per class, each with about five captions written by people. "
            "Each photo's label is the name of its folder."
        )
    else:
        st.markdown("Your own photos: each photo's label is the name of its folder.")
    sizes = sorted(len(paths) for paths in summary.classes.values())
    cols = st.columns(3)
    cols[0].metric("Images", summary.n_images)
    cols[1].metric("Classes", len(summary.classes))
    cols[2].metric("Images per class", sizes[0] if sizes[0] == sizes[-1] else f"{sizes[0]}–{sizes[-1]}")
    st.caption(f"From `{summary.folder}`.")
    for path, reason in summary.problems:
        st.warning(f"skipped {path}: {reason}")
    samples = summary.samples()
    st.subheader("One photo per class")
    photo_grid("samples", list(samples.values()), list(samples), width=130)

    noisy = os.path.join(summary.folder, datasets.NOISY_EXAMPLE)
    st.subheader("Labels are noisy")
    if os.path.isfile(noisy):
        left, right = st.columns([1, 2])
        left.image(noisy, caption=f"labelled “{class_of(noisy)}”", width=260)
        right.markdown(
            "This photo sits in the **bottle** folder, yet it shows a cat in a sink. Many photos show "
            "several classes, and the labelled object is often small. Keep that in mind when a search "
            "returns a “wrong” class: the photo may be right and the label wrong. What people wrote about it:"
        )
        for line in datasets.captions(noisy):
            right.markdown(f"- {line}")
    else:
        st.markdown("Many photos show several classes, and the labelled object is often small: expect some mismatches.")


def describe_gallery(summary: datasets.DatasetSummary) -> None:
    st.markdown(
        f"**The built-in gallery**: {summary.n_images} real photos that ship with scikit-image "
        "(`skimage.data`), one per class. Everything below works on it; with Pascal Sentences it gets interesting."
    )
    paths = summary.paths()
    photo_grid("gallery", paths, [f"{class_of(p)}: {gallery.description(p) or ''}" for p in paths])


def indexing_section(source: Source) -> bool:
    """Index (or check) the source's folder once per server; returns whether the store is usable."""
    st.header("2. Indexing the images")
    engine = source.engine
    with guard("Indexing"):
        encoder = engine.encoder
        st.markdown(
            f"A convolutional network pretrained on ImageNet, **{encoder.name}**, turns each photo into "
            f"**{encoder.dim} numbers**: the activations of its last layer before the classifier. Photos "
            "that look alike get vectors that point the same way, so search becomes *nearest vectors* "
            "(cosine distance). The vectors are computed once and saved in the feature store."
        )
        if config.read_only():  # serve what is indexed: never write
            return describe_store(source, None)
        ticked = st.checkbox(
            "Regenerate the features now (otherwise they are loaded from the store)", key="regenerate"
        )
        run = (source.folder, source.store_root, source.encoder)
        regenerate = once_per_tick(ticked, "regenerated", run)
        done = indexed(source.store_root, source.encoder)
        if regenerate or source.folder not in done:
            bar = st.progress(0.0, text=f"Embedding the photos of {source.folder} with {encoder.name}…")

            rate = Rate("photos")

            def progress(n: int, total: int) -> None:
                speed = rate.text(n, total)
                bar.progress(n / max(total, 1), text=f"Embedded {n} of {total} photos with {encoder.name}" + (f": {speed}" if speed else ""))

            # Embeds only photos the store does not have yet (all of them the first time), or every
            # photo when regenerating.
            report = engine.index(source.folder, progress=progress, rebuild=regenerate)
            if report.embedded:
                bar.progress(1.0, text=f"Done: embedded {report.embedded} photos.")
            else:
                bar.empty()  # nothing new: the store was loaded as it was
            done[source.folder] = report
            if regenerate:
                st.session_state["regenerated"] = run
        return describe_store(source, done[source.folder])
    return False


def describe_store(source: Source, report: UpdateReport | None) -> bool:
    """The store's size and its first vectors; `report` (an UpdateReport) when this server indexed it."""
    if report is not None:
        for path, reason in report.skipped:
            st.warning(f"skipped {path}: {reason}")
    store = source.engine.store
    by_us = "" if report is None else f" (indexed by this server: {report.embedded} photos embedded, {report.unchanged} unchanged)"
    st.markdown(
        f"The store `{store.directory}` holds **{len(store)} vectors of {store.vectors.shape[1]} numbers**{by_us}. The first ones:"
    )
    import pandas as pd

    first = pd.DataFrame(store.vectors[:5, :10], index=[source.label(p) for p in store.paths[:5]])
    first.columns = [str(c) for c in first.columns]
    st.dataframe(first, width="stretch")
    st.caption(
        f"10 of {store.vectors.shape[1]} numbers for 5 of {len(store)} photos. They are averages of "
        "ReLU activations: never negative, and most are small."
    )
    return True


@st.fragment
def image_search_section(source: Source, k: int) -> None:
    st.header("3. Image search")
    st.markdown(
        "Pick a photo: its vector's nearest neighbours in the store, found with the store's index (Annoy; faiss IVF-PQ from 20,000 photos), are the "
        "most similar photos. The number under each is the cosine distance (0 = same direction)."
    )
    with guard("Image search"):
        picked = photo_picker(source, "search")
        if picked is None:
            return
        photo, label = picked
        names = imagenet.class_names()
        left, right = st.columns([1, 2])
        left.image(photo, caption=f"query: {label}", width=220)
        cid = right.selectbox(
            "Re-weight towards an ImageNet class",
            range(len(names)),
            index=imagenet.find_class("Siamese cat"),
            format_func=names.__getitem__,
            key="reweight_class",
        )
        right.markdown(
            "**The re-weighting trick**: the ImageNet classifier on top of the encoder scores a class as a "
            "weighted sum of the features. Multiplying every vector by that class's weights stretches the "
            "features that speak for the class, so the search looks at, say, the cat rather than the sink."
        )
        cls = imagenet.class_synonyms()[cid][0]
        plain, weighted = st.columns(2)
        state = (source.store_root, source.encoder, source.engine.store.fingerprint)
        with plain:
            st.subheader("Nearest photos")
            with guard("Search"):
                grid("plain", similar_images(*state, photo, k, None), width=130)
        with weighted:
            st.subheader(f"Re-weighted towards “{cls}”")
            with guard("Re-weighted search"):
                grid("reweighted", similar_images(*state, photo, k, cid), width=130)


@st.fragment
def words_section(engine: Engine, k: int) -> None:
    st.header("4. Words")
    st.markdown(
        "Words get vectors too: **GloVe** (Pennington et al., 2014) learned 50 numbers for each of 400,000 "
        "words from how often words occur together in Wikipedia and news text. Words used alike point alike."
    )
    with guard("Words"):
        word = st.text_input("A word", "cat", key="word").strip()
        if word:
            try:
                vector = engine.words.vector(word)
            except VectorSearchError as err:  # UnknownWordError
                st.warning(
                    f"{message(err)}. A word outside the vocabulary has no vector: searches skip it "
                    "(and say so), and a query of unknown words only is refused."
                )
            else:
                st.markdown(f"“{word}” is {len(vector)} numbers: " + ", ".join(f"{v:.2f}" for v in vector[:8]) + ", …")
                import pandas as pd

                st.bar_chart(pd.DataFrame({"value": vector}), height=160)
        else:
            st.info("Type a word to see its vector.")
    with guard("Similar words"):
        text = st.text_input("Words similar to (a word or a phrase)", "cat", key="similar_to")
        try:
            results = engine.similar_words(text, k)
        except VectorSearchError as err:  # unknown words, an empty query
            st.warning(message(err))
        else:
            st.markdown(" · ".join(f"**{r.item}** {r.distance:.2f}" for r in results))


JOINT_METHODS = {
    "hybrid": "hybrid: the DeViSE-style network (epochs, loss curve)",
    "blend": "blend: a class classifier blended with ConSE (the project default)",
    "captions": "captions: the blend, also learning from the photos' captions",
}


@st.fragment
def hybrid_section(source: Source) -> None:
    st.header("5. The hybrid model")
    st.markdown(
        "Images and words live in different spaces. The **hybrid model** (after DeViSE, Frome et al., 2013) "
        "is a small network trained to put each photo's image vector onto the word vector of its label: "
        "a photo of a cat should land near “cat”. Then photos and words share the 50-d word space, so a "
        "photo can be described with words (tags) and found with words (text search).\n\n"
        "The hybrid snaps every photo onto one of its training classes, so words outside them find "
        "little. The project's default, **blend**, mixes a classifier of the dataset's classes with "
        "ConSE (Norouzi et al., 2014: the word vectors of the photo's likely ImageNet classes), which needs "
        "no training at all and is used until a model is trained."
    )
    with guard("Hybrid model"):
        if not config.read_only():  # serve the saved model: no training controls
            retrain_controls(source)
        describe_model(source.engine)


def retrain_controls(source: Source) -> None:
    """Method, epochs, held-out classes and the Retrain box; trains and reruns the page when ticked."""
    engine = source.engine
    classes = engine.current().overview.classes
    left, middle, right = st.columns([2, 1, 2])
    has_captions = datasets.default_captions_dir(engine.store.dataset) is not None
    methods = [m for m in JOINT_METHODS if m != "captions" or has_captions]  # captions only where there are some
    method = left.selectbox("Method to train", methods, format_func=JOINT_METHODS.get, key="method")
    epochs = middle.number_input("Epochs", 1, 500, 50, key="epochs", disabled=method != "hybrid")
    holdout = right.multiselect(
        "Hold out classes (to try zero-shot search)", classes, key="holdout", help="Left out of training entirely"
    )
    retrain = st.checkbox(
        f"Retrain now and save to `{engine.joint_model_path()}` (otherwise the saved model is loaded)",
        key="retrain",
    )
    run = (source.folder, source.store_root, source.encoder, method, int(epochs), tuple(holdout))
    if once_per_tick(retrain, "trained", run):
        bar = st.progress(0.0, text=f"Training the {method} model on {len(engine.store)} photos…")

        def progress(epoch: int, logs: dict) -> None:
            shown_logs = ", ".join(f"{name} {value:.4f}" for name, value in logs.items())
            bar.progress(min(epoch / epochs, 1.0), text=f"epoch {epoch}/{epochs}: {shown_logs}")

        engine.train(epochs=int(epochs), holdout_classes=holdout, method=method, progress=progress)
        st.session_state["trained"] = run
        st.rerun()  # tags and text search below now use the new model


def describe_model(engine: Engine) -> None:
    """What the engine's joint model is: method, classes, training time, and the loss curve of a hybrid."""
    with st.spinner("Loading the joint model…"):
        model = engine.joint
    meta = model.meta
    path = engine.joint_model_path()
    if model.method == "conse":
        train = "" if config.read_only() else " Tick the box to train one."
        st.info(f"No trained model at `{path}` yet: tags and text search use ConSE.{train}")
        return
    held_out = meta.get("held_out_classes") or []
    st.markdown(
        f"Using `{path}`: a **{model.method}** model of {meta['encoder']} features, trained on "
        f"**{len(model.classes)} classes** in {meta.get('train_seconds', '?')} s"
        + (f", holding out {', '.join(held_out)}" if held_out else "")
        + "."
    )
    history = meta.get("history")
    if not history or not history.get("loss"):
        return
    import pandas as pd

    losses = pd.DataFrame({name: history[name] for name in ("loss", "val_loss") if name in history})
    losses.index = pd.RangeIndex(1, len(losses) + 1, name="epoch")
    last = losses.iloc[-1]
    st.markdown(
        f"Trained **{len(losses)} epochs** (kept the weights of epoch {history.get('best_epoch', len(losses))}, "
        "the best on validation): "
        + ", ".join(f"final {name} **{value:.4f}**" for name, value in last.items())
        + ". The loss is minus the cosine between a photo's mapped vector and its label's word vector."
    )
    st.line_chart(losses, height=220, x_label="epoch", y_label="loss (−cosine)")


@st.fragment
def tags_section(source: Source, k: int) -> None:
    st.header("6. Tags")
    st.markdown(
        "Map a photo into the word space with the model of section 5 and read off the nearest words: "
        "tags. They are not limited to the class names."
    )
    with guard("Tags"):
        picked = photo_picker(source, "tags")
        if picked is None:
            return
        photo, label = picked
        left, right = st.columns([1, 2])
        left.image(photo, caption=label, width=220)
        tags = source.engine.tags(as_query(photo), k)
        right.markdown("**Tags:** " + " · ".join(f"**{r.item}** {r.distance:.2f}" for r in tags))
        if isinstance(photo, str):
            lines = datasets.captions(photo)
            if lines:
                right.markdown("What people wrote about it:\n" + "\n".join(f"- {line}" for line in lines))


def set_query(text: str) -> None:
    st.session_state["text_query"] = text


@st.fragment
def text_search_section(source: Source, k: int) -> None:
    st.header("7. Text search")
    st.markdown(
        "Type words or a sentence: its vector, in the shared space, is compared with every photo's. A "
        "sentence is the weighted mean of its words: words that tell the photos apart count most, "
        "\"the\" or \"in\" nothing; a synonym of a class name finds the class (plane: aeroplane). "
        "Terms combine with weights: `cat + sofa - person`, `2:dog + grass`."
    )
    with guard("Text search"):
        cols = st.columns(len(TEXT_EXAMPLES))
        for col, example in zip(cols, TEXT_EXAMPLES):
            col.button(example, key=f"example_{example}", on_click=set_query, args=(example,), width="stretch")
        st.session_state.setdefault("text_query", TEXT_EXAMPLES[0])
        text = st.text_input("Search the photos", key="text_query")
        try:
            results, parsed = source.engine.search_text(text, k)
        except VectorSearchError as err:  # QueryError: empty, malformed, or no known word
            st.warning(message(err))
            return
        st.caption("Words that counted: " + word_shares(parsed.words))
        if parsed.unknown:
            st.caption("Skipped words not in the vocabulary: " + ", ".join(parsed.unknown))
        grid("text", results)


def word_shares(words) -> str:
    """`**cat** 99%, sun 0%, plane 100% (as aeroplane)`: each word's share of its term, the main ones bold."""
    parts = []
    for w in words:
        text = f"**{w.word}**" if abs(w.weight) >= 0.1 else w.word
        parts.append(f"{text} {w.weight:.0%}" + (f" (as {w.reaches})" if w.reaches else ""))
    return ", ".join(parts)


@st.fragment
def map_section(source: Source) -> None:
    st.header("8. A map of the images")
    st.markdown(
        "t-SNE squeezes the image vectors into two dimensions, keeping neighbours close: each dot is a "
        "photo, coloured by its label. Hover for the file, click a dot to see the photo. Clusters are "
        "classes the encoder tells apart; mixed regions are where it (or the labels) hesitate."
    )
    with guard("Map"):
        import altair as alt
        import pandas as pd

        store = source.engine.store
        with st.spinner("Computing the t-SNE map (once per store)…"):
            shown = source.engine.image_map()
        paths = [store.paths[i] for i in shown.rows]
        frame = pd.DataFrame(
            {
                "x": shown.points[:, 0],
                "y": shown.points[:, 1],
                "class": [store.classes[i] for i in shown.rows],
                "photo": [source.label(p) for p in paths],
            }
        )
        if len(shown.rows) < shown.total:
            st.caption(f"{len(shown.rows):,} of {shown.total:,} photos: a fixed sample, each class in proportion.")
        tooltip = ["photo", "class"]
        if st.checkbox("Thumbnails on hover", key="map_thumbnails", help="Sends a small JPEG of every photo shown to the page"):
            frame["image"] = thumbnail_uris(tuple(paths))
            tooltip.append("image")
        pick = alt.selection_point(name="pick", fields=["photo"], on="click")
        chart = (
            alt.Chart(frame)
            .mark_circle(size=70, opacity=0.85)
            .encode(
                x=alt.X("x", axis=None, scale=alt.Scale(zero=False, nice=False)),
                y=alt.Y("y", axis=None, scale=alt.Scale(zero=False, nice=False)),
                color=alt.Color("class:N", scale=alt.Scale(scheme="category20"), legend=alt.Legend(columns=2)),
                tooltip=tooltip,
            )
            .add_params(pick)
            .properties(height=520)
        )
        event = st.altair_chart(chart, on_select="rerun", key="map", width="stretch")
        # The selection comes from the browser: show only a photo of the map itself (server mode).
        photos = set(frame["photo"])
        picked = [row.get("photo") for row in (event.selection.get("pick") or []) if row.get("photo") in photos]
        if picked:
            st.image(os.path.join(source.folder, picked[0]), caption=picked[0], width=260)


# --- the page ---------------------------------------------------------------------------------------


def main() -> None:
    st.set_page_config(page_title="vector_search walkthrough", page_icon="🔎", layout="wide")
    st.html(GRID_STYLE)
    settings = allowed(sidebar())
    st.title("Semantic search over images and words")
    st.markdown(
        "A walkthrough you can play with: turn photos into vectors with a pretrained network, find similar "
        "photos, learn what word vectors are, join the two in one space, and search photos with words. "
        "Change the settings in the sidebar; every box below can be edited."
    )
    source = dataset_section(settings)
    usable = source is not None and indexing_section(source)
    if usable:
        image_search_section(source, settings.k)
    words_section(source.engine if source else get_engine(settings.features, settings.encoder), settings.k)
    if usable:
        hybrid_section(source)
        tags_section(source, settings.k)
        text_search_section(source, settings.k)
        map_section(source)


main()
