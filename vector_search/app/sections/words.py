"""Section 4: word vectors, and the words nearest a word or a phrase."""

from __future__ import annotations

import numpy as np
import streamlit as st

from vector_search.app import widgets
from vector_search.app.state import message
from vector_search.engine import Engine
from vector_search.errors import VectorSearchError


@st.fragment
def words_section(engine: Engine, k: int) -> None:
    st.header("4. Words")
    st.markdown(
        "Words get vectors too: **GloVe** (Pennington et al., 2014) learned 50 numbers for each of 400,000 "
        "words from how often words occur together in Wikipedia and news text. Words used alike point alike."
    )
    box, shown = widgets.lazy("A word's vector, and the words nearest a word or a phrase", "words_open")
    if not shown:  # GloVe's 400,000 words load when the box is first opened
        return
    with box:
        with widgets.guard("Words"):
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
                    st.vega_lite_chart(bar_chart(vector), height=160)
            else:
                st.info("Type a word to see its vector.")
        with widgets.guard("Similar words"):
            text = st.text_input("Words similar to (a word or a phrase)", "cat", key="similar_to")
            try:
                found = engine.similar_words(text, k)
            except VectorSearchError as err:  # unknown words, an empty query
                st.warning(message(err))
            else:
                st.markdown(" · ".join(f"**{r.item}** {r.distance:.2f}" for r in found))


def bar_chart(vector: np.ndarray) -> dict:
    """A Vega-Lite bar chart of a vector's numbers, its data inline: no altair to import (seconds,
    on a busy machine) before the map needs it."""
    return {
        "data": {"values": [{"number": i, "value": float(v)} for i, v in enumerate(vector)]},
        "mark": "bar",
        "encoding": {"x": {"field": "number", "type": "ordinal"}, "y": {"field": "value", "type": "quantitative"}},
    }
