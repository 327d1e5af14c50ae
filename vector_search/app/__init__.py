"""The walkthrough app (`streamlit run app.py`): its state and policy, and its sections.

- `state`: what the page decides, without Streamlit (settings and the folder-root check, the
  server-wide engines and indexing reports, the short-lived result cache, one-shot action boxes,
  photo sampling, the joint methods offered), unit-tested in tests/test_app_state.py;
- `widgets`: the server-wide resources held in `st.cache_resource`, error guards, photo grids
  and the photo picker;
- `sections/`: the page's numbered sections, a module per concern (dataset and indexing,
  images, words, the joint model). app.py at the repository root lays them out in order.

Adding a section: write a function `name_section(source, k)` (decorate it with `@st.fragment`
so typing in it reruns it alone), wrap its work in `widgets.guard(...)` so an error is one line on
the page, take every answer from the engine (`source.engine`), and call it from app.py's main().
Load what it needs inside it, when it first runs: the first page must not pay for a section's model.
"""
