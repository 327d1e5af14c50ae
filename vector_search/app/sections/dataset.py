"""Sections 1 and 2: the photos the walkthrough runs on, and indexing them into the store."""

from __future__ import annotations

import os

import streamlit as st

from vector_search import config
from vector_search.app import widgets
from vector_search.app.library import sorted_by_class
from vector_search.app.state import Settings, Source, once_per_tick
from vector_search.datasets import gallery
from vector_search.datasets import pascal as datasets
from vector_search.imaging.images import class_of, printable
from vector_search.progress import Rate
from vector_search.store.updates import UpdateReport


def dataset_section(settings: Settings) -> Source | None:
    """The dataset folder described (or the built-in gallery, when there is none); None when there
    are no photos to run on."""
    st.header("1. The dataset")
    with widgets.guard("Dataset"):
        summary = None if settings.use_gallery else widgets.summarize(settings.dataset)
        if summary is not None and summary.n_images:
            describe_dataset(summary)
            return Source(settings.dataset, widgets.engine(settings.features, settings.encoder))
        if not settings.use_gallery:
            what = "no folder" if summary is None else "no images in the folder"
            if config.read_only():
                st.warning(f"There is {what} `{settings.dataset}` on this server.")
                return None
            st.warning(f"There is {what} `{settings.dataset}`: the walkthrough runs on the built-in gallery below.")
            st.markdown(datasets.HOW_TO_GET_DATA.format(url=datasets.PASCAL_URL))
        folder = str(gallery.gallery_photos_dir(settings.features)) if config.read_only() else widgets.export_gallery(settings.features)
        if widgets.summarize(folder) is None:  # read-only, and never exported
            st.warning("The built-in gallery is not set up on this server.")
            return None
        describe_gallery(widgets.summarize(folder))
        return Source(folder, widgets.engine(str(gallery.gallery_features_root(settings.features)), settings.encoder))
    return None


def describe_dataset(summary: datasets.DatasetSummary) -> None:
    if not sorted_by_class(summary):
        describe_library(summary)
        return
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
        st.warning(f"skipped {printable(path)}: {reason}")
    samples = summary.samples()
    st.subheader("One photo per class")
    widgets.photo_grid("samples", list(samples.values()), [printable(name) for name in samples], width=130)

    noisy = os.path.join(summary.folder, datasets.NOISY_EXAMPLE)
    st.subheader("Labels are noisy")
    if os.path.isfile(noisy):
        left, right = st.columns([1, 2])
        widgets.image(noisy, f"labelled “{printable(class_of(noisy))}”", 260, left)
        right.markdown(
            "This photo sits in the **bottle** folder, yet it shows a cat in a sink. Many photos show "
            "several classes, and the labelled object is often small. Keep that in mind when a search "
            "returns a “wrong” class: the photo may be right and the label wrong. What people wrote about it:"
        )
        for line in datasets.captions(noisy):
            right.markdown(f"- {line}")
    else:
        st.markdown("Many photos show several classes, and the labelled object is often small: expect some mismatches.")


def describe_library(summary: datasets.DatasetSummary) -> None:
    """A flat folder: photos not sorted into class folders (a photo library)."""
    st.markdown(
        "Your own photos, not sorted into class folders: nothing below needs labels. Find photos like one you pick (3), "
        "tag them and find them with words (6, 7: no training needed), narrow a search to a folder, the days photos were "
        "taken on or a camera (3, 7), and see them all on a map (8)."
    )
    cols = st.columns(3)
    cols[0].metric("Images", summary.n_images)
    cols[1].metric("Folders", len(summary.classes))
    cols[2].metric("Photos at the top", len(summary.classes.get(".", [])))
    st.caption(f"From `{summary.folder}`.")
    for path, reason in summary.problems:
        st.warning(f"skipped {printable(path)}: {reason}")
    paths = summary.paths()
    shown = paths[:: max(1, len(paths) // 8)][:8]
    st.subheader("A few of the photos")
    widgets.photo_grid("samples", shown, [printable(os.path.relpath(p, summary.folder)) for p in shown], width=130)


def describe_gallery(summary: datasets.DatasetSummary) -> None:
    st.markdown(
        f"**The built-in gallery**: {summary.n_images} real photos that ship with scikit-image "
        "(`skimage.data`), one per class. Everything below works on it; with Pascal Sentences it gets interesting."
    )
    paths = summary.paths()
    widgets.photo_grid("gallery", paths, [f"{class_of(p)}: {gallery.description(p) or ''}" for p in paths])


def indexing_section(source: Source) -> bool:
    """Index (or check) the source's folder once per server; returns whether the store is usable."""
    st.header("2. Indexing the images")
    engine = source.engine
    with widgets.guard("Indexing"):
        encoder = engine.encoder
        st.markdown(
            f"A convolutional network pretrained on ImageNet, **{encoder.name}**, turns each photo into "
            f"**{encoder.dim} numbers**: the activations of its last layer before the classifier. Photos "
            "that look alike get vectors that point the same way, so search becomes *nearest vectors* "
            "(cosine distance). The vectors are computed once and saved in the feature store."
        )
        if config.read_only():  # serve what is indexed: never write
            return describe_store(source, None)
        ticked = st.checkbox("Regenerate the features now (otherwise they are loaded from the store)", key="regenerate")
        regenerate = once_per_tick(st.session_state, ticked, "regenerated", source.key)
        indexed = widgets.indexed()
        report = indexed.report(*source.key)
        if regenerate or report is None:
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
            indexed.record(*source.key, report)
            if regenerate:
                st.session_state["regenerated"] = source.key
        return describe_store(source, report)
    return False


def describe_store(source: Source, report: UpdateReport | None) -> bool:
    """The store's size and its first vectors; `report` when this server indexed it."""
    if report is not None:
        for path, reason in report.skipped:
            st.warning(f"skipped {printable(path)}: {reason}")
    store = source.engine.store
    by_us = "" if report is None else f" (indexed by this server: {report.embedded} photos embedded, {report.unchanged} unchanged)"
    st.markdown(f"The store `{store.directory}` holds **{len(store)} vectors of {store.vectors.shape[1]} numbers**{by_us}. The first ones:")
    rows = [f"| {source.label(p).replace('|', '&#124;')} | " + " | ".join(f"{v:.3f}" for v in vector) + " |"
            for p, vector in zip(map(store.path, range(min(5, len(store)))), store.vectors[:5, :10])]  # (not all N paths)
    st.markdown("\n".join(["| photo | " + " | ".join(map(str, range(10))) + " |", "|---" * 11 + "|", *rows]))  # (no pandas to import)
    st.caption(
        f"10 of {store.vectors.shape[1]} numbers for 5 of {len(store)} photos. They are averages of "
        "ReLU activations: never negative, and most are small."
    )
    return True
