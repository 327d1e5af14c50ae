"""A bare Streamlit page, the yardstick of `bench/bench_app.py --browser`: one text box and one image.

The photo shown is picked from the text typed (so a new query shows a new photo, as a text search
does), with its file name as caption; sections "7." and "8." frame it as the app frames its text
search, so both pages are driven and timed the same way. `streamlit run bench/bare_page.py`
with VECTOR_SEARCH_DATASET set to a folder of <class>/<image>.jpg.
"""

from __future__ import annotations

import os
import zlib

import streamlit as st

CLASSES = ("cat", "dog", "bus", "boat")  # a few class folders: listing them is cheap


@st.cache_resource
def photos() -> list[str]:
    folder = os.environ["VECTOR_SEARCH_DATASET"]
    return sorted(os.path.join(folder, c, name) for c in CLASSES for name in os.listdir(os.path.join(folder, c)))


st.header("7. Text")
text = st.text_input("Search the photos", "ocean", key="text_query")
photo = photos()[zlib.crc32(text.encode()) % len(photos())]
st.image(photo, caption=os.path.basename(photo), width=150)
st.header("8. End")
