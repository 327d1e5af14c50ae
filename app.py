"""The vector_search walkthrough, interactive: `streamlit run app.py`.

A thin page over vector_search.app: its state and policy live in vector_search/app/state.py (tested
without a browser), each numbered section in vector_search/app/sections/. Every answer comes from
the library (mostly the `Engine`). Expensive things (engines, models, indexes, word vectors) load
once per server; each section is a fragment, so typing in one box reruns only that section. What
only sections 4, 6 and 8 need (GloVe's 400k words, the tag words, the map) loads when their box is
first opened, so the first page answers a text search without them.

Settings live in the sidebar; the environment sets their defaults:
    VECTOR_SEARCH_DATASET    the image folder (<folder>/<class>/<image>)
    VECTOR_SEARCH_FEATURES   the feature store folder (default: features/)
Behind a URL (README, "Serving it"):
    VECTOR_SEARCH_ROOT       the only folder visitors may name (datasets and stores under it)
    VECTOR_SEARCH_READONLY   1: serve what is indexed; no control that writes is shown
"""

from __future__ import annotations

import streamlit as st

from vector_search import config
from vector_search.app import widgets
from vector_search.app.sections.dataset import dataset_section, indexing_section
from vector_search.app.sections.images import image_search_section, map_section
from vector_search.app.sections.joint import joint_model_section, tags_section, text_search_section
from vector_search.app.sections.words import words_section
from vector_search.app.state import Settings
from vector_search.imaging.encoders import DEFAULT_ENCODER, ENCODER_NAMES, encoders_help
from vector_search.serving import PathNotAllowedError


def sidebar() -> Settings:
    with st.sidebar:
        st.header("Settings")
        dataset = st.text_input(
            "Dataset folder", str(config.default_dataset()), key="dataset", help="A folder laid out as <folder>/<class>/<image>.jpg"
        )
        encoder = st.selectbox("Image encoder", ENCODER_NAMES, index=ENCODER_NAMES.index(DEFAULT_ENCODER), key="encoder", help=encoders_help())
        k = st.slider("Results per query (k)", 1, 30, 8, key="k")
        features = st.text_input("Feature store folder", str(config.features_root()), key="features", help="Where vectors and indexes are saved")
        use_gallery = st.checkbox("Use the built-in gallery instead", key="use_gallery", help="9 sample photos shipped with scikit-image")
        st.caption("Models, indexes and word vectors load once per server; queries then take milliseconds.")
    return Settings(dataset.strip(), encoder, k, features.strip() or str(config.features_root()), use_gallery)


def main() -> None:
    st.set_page_config(page_title="vector_search walkthrough", page_icon=widgets.ICON, layout="wide")
    st.html(widgets.GRID_STYLE)
    try:
        settings = sidebar().allowed()  # behind a URL, both folders must lie under the server's root
    except PathNotAllowedError as err:
        st.error(str(err))
        return
    st.title("Semantic search over images and words")
    st.markdown(
        "A walkthrough you can play with: turn photos into vectors with a pretrained network, find similar "
        "photos, learn what word vectors are, join the two in one space, and search photos with words. "
        "Change the settings in the sidebar; every box below can be edited."
    )
    source = dataset_section(settings)
    usable = source is not None and indexing_section(source)
    if usable:
        widgets.engines().warm(source.engine)  # text search's parts load while 3 and 4 render
    if usable:
        image_search_section(source, settings.k)
    words_section(source.engine if source else widgets.engine(settings.features, settings.encoder), settings.k)
    if usable:
        joint_model_section(source)
        tags_section(source, settings.k)
        text_search_section(source, settings.k)
        map_section(source)


if __name__ == "__main__":  # `streamlit run` (and AppTest) run this file as __main__; importing it draws nothing
    main()
