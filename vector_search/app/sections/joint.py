"""Sections 5, 6 and 7: the joint model that maps photos into the word space, the tags it reads
off a photo, and text search with it."""

from __future__ import annotations

import streamlit as st

from vector_search import config
from vector_search.app import state, widgets
from vector_search.app.library import FilterRow
from vector_search.app.state import METHOD_LABELS, TEXT_EXAMPLES, Source, as_query, message, once_per_tick, trainable_methods
from vector_search.datasets import pascal as datasets
from vector_search.engine import Engine
from vector_search.errors import VectorSearchError
from vector_search.imaging.images import printable
from vector_search.text.sentences import word_shares


@st.fragment
def joint_model_section(source: Source) -> None:
    st.header("5. The joint model")
    st.markdown(
        "Images and words live in different spaces. A **joint model** maps each photo's image vector into "
        "a text space, so a photo can be described with words (tags) and found with words (text search). "
        "The default text space is a pretrained **sentence encoder** (all-MiniLM-L6-v2, 384-d): it reads a "
        "whole sentence, so in \"a dog playing on the beach\" the beach counts too. Until a model is trained, "
        "**ConSE** (Norouzi et al., 2014) does it with no training at all: the sentence vectors of the "
        "photo's likely ImageNet classes (\"a photo of a tabby cat\").\n\n"
        "The default trained model, **sentence**, adds a classifier of the dataset's classes and, where the "
        "photos have captions, a map onto what people wrote about them. In GloVe's 50-d word space, "
        "**blend** mixes a classifier with ConSE and **captions** also learns from the captions. "
        "The classic **hybrid** (after DeViSE, Frome et al., 2013) is a small network trained to put each "
        "photo onto the word vector of its label: it snaps every photo onto one of its training classes, "
        "so words outside them find little."
    )
    with widgets.guard("Joint model"):
        labelled = source.engine.current().overview.labelled
        if labelled and not config.read_only():  # serve the saved model: no training controls
            retrain_controls(source)
        describe_model(source.engine, labelled)


def retrain_controls(source: Source) -> None:
    """Method, epochs, held-out classes and the Retrain box; trains and reruns the page when ticked."""
    engine = source.engine
    classes = engine.current().overview.classes
    left, middle, right = st.columns([2, 1, 2])
    methods = trainable_methods(datasets.default_captions_dir(engine.store.dataset) is not None)
    method = left.selectbox("Method to train", methods, format_func=METHOD_LABELS.get, key="method")
    epochs = middle.number_input("Epochs", 1, 500, 50, key="epochs", disabled=method != "hybrid")
    holdout = right.multiselect("Hold out classes (to try zero-shot search)", classes, format_func=printable, key="holdout",
                                help="Left out of training entirely")
    retrain = st.checkbox(f"Retrain now and save to `{engine.joint_model_path()}` (otherwise the saved model is loaded)", key="retrain")
    run = (*source.key, method, int(epochs), tuple(holdout))
    if once_per_tick(st.session_state, retrain, "trained", run):
        bar = st.progress(0.0, text=f"Training the {method} model on {len(engine.store)} photos…")

        def progress(epoch: int, logs: dict) -> None:
            shown_logs = ", ".join(f"{name} {value:.4f}" for name, value in logs.items())
            bar.progress(min(epoch / epochs, 1.0), text=f"epoch {epoch}/{epochs}: {shown_logs}")

        engine.train(epochs=int(epochs), holdout_classes=holdout, method=method, progress=progress)
        st.session_state["trained"] = run
        st.rerun()  # tags and text search below now use the new model


def describe_model(engine: Engine, labelled: bool = True) -> None:
    """What the engine's joint model is: method, classes, training time, and the loss curve of a hybrid
    (`labelled`: the photos' folders are classes to train on)."""
    with st.spinner("Loading the joint model…"):
        model = engine.joint
    meta = model.meta
    path = engine.joint_model_path()
    if model.method == "conse":
        if not labelled:
            st.info("Your photos are not sorted into class folders, so there is nothing to train on, and nothing is needed: "
                    "tags and text search use ConSE in the sentence encoder's space, which knows ImageNet's 1,000 things.")
            return
        train = " Run `vector-search train` on the server to train one." if config.read_only() else " Tick the box to train one."
        st.info(f"No trained model at `{path}` yet: tags and text search use ConSE in the sentence encoder's space.{train}")
        return
    held_out = meta.get("held_out_classes") or []
    st.markdown(
        f"Using `{path}`: a **{model.method}** model of {meta['encoder']} features into "
        f"{'the sentence encoder' if model.text == 'minilm' else 'GloVe'}'s space, trained on "
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
    box, shown = widgets.lazy("Tag a photo", "tags_open")
    if not shown:  # the tag words (their sentence vectors) load when the box is first opened
        return
    with box, widgets.guard("Tags"):
        picked = widgets.picked_photo(source, "tags")
        if picked is None:
            return
        photo, right = picked
        with st.spinner("Loading the tag words (once per server)…"):
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
        "Type words or a sentence: its vector, in the shared space, is compared with every photo's. The "
        "sentence encoder reads a sentence whole; terms combine with weights: `cat + sofa - person`, "
        "`2:dog + grass`. Tick the box below the photos to see GloVe's answer beside it: there a sentence "
        "is a weighted mean of its words (\"the\" or \"in\" count nothing)."
    )
    with widgets.guard("Text search"):
        cols = st.columns(len(TEXT_EXAMPLES))
        for col, example in zip(cols, TEXT_EXAMPLES):
            col.button(example, key=f"example_{example}", on_click=set_query, args=(example,), width="stretch")
        st.session_state.setdefault("text_query", TEXT_EXAMPLES[0])
        text = st.text_input("Search the photos", key="text_query")
        row = widgets.filter_row(source, "text")
        try:
            found, parsed = source.engine.search_text(text, k, row.filters, row.threshold)
        except VectorSearchError as err:  # QueryError: empty, malformed, or no known word; a filter that is not one
            st.warning(message(err))
            return
        counted_line(parsed)
        widgets.grid("text", found, source, empty=row.nothing_found())
        if st.checkbox("Show GloVe's answer beside the sentence encoder's", key="compare_glove"):
            compare_with_glove(source, text, k, found, parsed, row)


def counted_line(parsed) -> None:  # parsed: query.QueryVector
    """Under a query: which terms (sentence encoder) or words (GloVe) counted, and the words skipped."""
    st.caption("What counted: " + word_shares(parsed.words, markdown=True))
    if parsed.unknown:
        st.caption("Skipped words not in the vocabulary: " + ", ".join(parsed.unknown))


def compare_with_glove(source: Source, text: str, k: int, found, parsed, row: FilterRow) -> None:
    """The same query in the sentence encoder's space and in GloVe's, side by side: untrained, GloVe's
    ConSE; trained, a GloVe model trained once beside the default one (state.glove_model_path) as
    `train --text glove` trains it."""
    engine = source.engine
    trained = engine.joint.method != "conse"
    path = state.glove_model_path(engine)
    glove = widgets.engines().get(str(engine.features_root), engine.encoder_in_use(), str(path) if trained else None, text="glove")
    if trained and not path.is_file():
        if config.read_only():
            st.info(f"No GloVe model at `{path}` to compare with.")
            return
        with st.spinner(f"Training the GloVe-space model once, into `{path}`…"):
            glove.train(text="glove")
    sentence_side, glove_side = st.columns(2)
    glove_found, glove_parsed = glove.search_text(text, k, row.filters, row.threshold)
    for side, name, model, hits, query in ((sentence_side, "Sentence encoder", engine.joint, found, parsed),
                                            (glove_side, "GloVe", glove.joint, glove_found, glove_parsed)):
        with side:
            st.subheader(f"{name} ({model.method})")
            counted_line(query)
            widgets.grid(f"compare-{name}", hits, source, 110, row.nothing_found())
