"""Sections 3 and 8: image search (plain and re-weighted towards an ImageNet class), and a map of the photos."""

from __future__ import annotations

import streamlit as st

from vector_search.app import widgets
from vector_search.app.library import FilterRow, map_colours
from vector_search.app.state import Source, as_query
from vector_search.engine import Result
from vector_search.imaging import imagenet
from vector_search.imaging.images import printable


def similar_images(source: Source, photo: str | bytes, k: int, reweight: int | None, row: FilterRow) -> list[Result]:
    """The answers passing the filter row, kept a minute per store state, photo, k, class and row (widgets.results)."""
    engine = source.engine
    key = (*source.key, engine.store.fingerprint, photo, k, reweight, row)
    min_score = None if reweight is not None else row.threshold  # a re-weighted search has no score
    return widgets.results().get(key, lambda: engine.similar_images(as_query(photo), k, reweight=reweight, filters=row.filters,
                                                                   min_score=min_score))


@st.fragment
def image_search_section(source: Source, k: int) -> None:
    st.header("3. Image search")
    st.markdown(
        "Pick a photo: its vector's nearest neighbours in the store, found with the store's index (Annoy; "
        "faiss IVF-PQ from 20,000 photos), are the most similar photos. The number under each is the cosine distance (0 = same direction)."
    )
    with widgets.guard("Image search"):
        picked = widgets.picked_photo(source, "search", "query: {}")
        if picked is None:
            return
        photo, right = picked
        names = imagenet.class_names()
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
        row = widgets.filter_row(source, "search")
        plain, weighted = st.columns(2)
        with plain:
            st.subheader("Nearest photos")
            with widgets.guard("Search"):
                widgets.grid("plain", similar_images(source, photo, k, None, row), source, 130, row.nothing_found())
        with weighted:
            st.subheader(f"Re-weighted towards “{cls}”")
            with widgets.guard("Re-weighted search"):
                widgets.grid("reweighted", similar_images(source, photo, k, cid, row), source, 130, row.nothing_found(scored=False))


@st.fragment
def map_section(source: Source) -> None:
    st.header("8. A map of the images")
    labelled = source.engine.current().overview.labelled
    st.markdown(
        "t-SNE squeezes the image vectors into two dimensions, keeping neighbours close: each dot is a photo, "
        + ("coloured by its label. Hover for the file, click a dot to see the photo. Clusters are classes the encoder "
           "tells apart; mixed regions are where it (or the labels) hesitate." if labelled else
           "coloured by what tells your photos apart: their folder, else the month they were taken, else their camera. "
           "Hover for the file, click a dot to see the photo. Clusters are photos that look alike.")
    )
    box, opened = widgets.lazy("Show the map", "map_open")
    if not opened:  # the map (and altair, pandas) load when the box is first opened
        return
    with box:
        with widgets.guard("Map"):
            import altair as alt
            import pandas as pd

            store = source.engine.store
            with st.spinner("Computing the t-SNE map (once per store)…"):
                shown = source.engine.image_map()
            paths = [store.paths[i] for i in shown.rows]
            colour, values = map_colours(store, shown.rows, labelled)
            frame = pd.DataFrame(
                {
                    "x": shown.points[:, 0],
                    "y": shown.points[:, 1],
                    colour: [printable(v) for v in values],
                    "photo": [source.label(p) for p in paths],
                }
            )
            if len(shown.rows) < shown.total:
                st.caption(f"{len(shown.rows):,} of {shown.total:,} photos: a fixed sample" + (", each class in proportion." if labelled else "."))
            tooltip = ["photo", colour]
            if st.checkbox("Thumbnails on hover", key="map_thumbnails", help="Sends a small JPEG of every photo shown to the page"):
                frame["image"] = widgets.thumbnail_uris(tuple(paths))
                tooltip.append("image")
            pick = alt.selection_point(name="pick", fields=["photo"], on="click")
            chart = (
                alt.Chart(frame)
                .mark_circle(size=70, opacity=0.85)
                .encode(
                    x=alt.X("x", axis=None, scale=alt.Scale(zero=False, nice=False)),
                    y=alt.Y("y", axis=None, scale=alt.Scale(zero=False, nice=False)),
                    color=alt.Color(f"{colour}:N", scale=alt.Scale(scheme="category20"), legend=alt.Legend(columns=2)),
                    tooltip=tooltip,
                )
                .add_params(pick)
                .properties(height=520)
            )
            event = st.altair_chart(chart, on_select="rerun", key="map", width="stretch")
            # The selection comes from the browser: show only a photo of the map itself (server mode).
            photos = dict(zip(frame["photo"], paths))  # (labels are printable: they need not be the paths' bytes)
            picked = [row.get("photo") for row in (event.selection.get("pick") or []) if row.get("photo") in photos]
            if picked:
                widgets.image(photos[picked[0]], picked[0], 260)
