"""SQL: a console over the store (read-only sandbox: workbench/data/sql_console.py), with example
queries, the schema at hand, a quick chart and CSV / Parquet downloads."""

import io
import re

import streamlit as st

from workbench.charts import quick as quick_charts
from workbench.data import export, queries
from workbench.data.sql_console import DEFAULT_TIMEOUT_S

st.title("SQL")
path, sandbox = queries.require_store()


def examples() -> list[tuple[str, str]]:
    text = queries.load_sql("examples")
    parts = re.split(r"^-- name: (.+)$", text, flags=re.M)
    return [(parts[i].strip(), parts[i + 1].strip()) for i in range(1, len(parts) - 1, 2)]


EXAMPLES = examples()
if "sql_text" not in st.session_state:
    st.session_state["sql_text"] = EXAMPLES[0][1]


def use_example():
    title = st.session_state.get("sql_example")
    for t, q in EXAMPLES:
        if t == title:
            st.session_state["sql_text"] = q
            st.session_state.pop("sql_result", None)


left, right = st.columns([3, 1])
with right:
    st.markdown("**Schema**")
    schema = sandbox.schema()
    views = list(dict.fromkeys(schema["table_name"]))
    view = st.selectbox("View", views, key="sql_schema_view",
                        index=views.index("samples") if "samples" in views else 0)
    st.dataframe(schema.loc[schema["table_name"] == view, ["column_name", "data_type"]], hide_index=True,
                 width="stretch", height=300, key="sql_schema_cols")
    macros = sandbox.macros()
    if len(macros):
        st.caption("Macros: " + ", ".join(f"`{m.function_name}({', '.join(m.parameters)})`"
                                          for m in macros.itertuples(index=False)))
    st.caption("Read-only: one SELECT statement; only the store's own files; "
               f"time limit {DEFAULT_TIMEOUT_S:g} s.")

with left:
    st.selectbox("Example queries", [t for t, _ in EXAMPLES], key="sql_example", on_change=use_example,
                 index=None, placeholder="Pick an example to load it")
    st.text_area("Query", key="sql_text", height=160)
    c1, c2, c3 = st.columns([1, 1, 2])
    max_rows = c1.number_input("Row limit", min_value=1, max_value=100_000, value=1000, step=100, key="sql_max_rows")
    timeout = c2.number_input("Time limit (s)", min_value=1.0, max_value=60.0, value=float(DEFAULT_TIMEOUT_S),
                              step=1.0, key="sql_timeout")
    if c3.button("Run query", type="primary", key="sql_run", icon=":material/play_arrow:"):
        st.session_state["sql_result"] = sandbox.run(st.session_state["sql_text"], max_rows=int(max_rows),
                                                     timeout_s=float(timeout))

res = st.session_state.get("sql_result")
if res is not None:
    if not res.ok:
        st.error(res.error)
    else:
        df = res.df
        note = f"{len(df)} rows · {res.elapsed_s * 1000:.0f} ms"
        if res.truncated:
            note += f" · stopped at the row limit ({len(df)}); more rows exist"
        st.caption(note)
        st.dataframe(df, width="stretch", key="sql_result_table")
        d1, d2, _ = st.columns([1, 1, 3])
        d1.download_button("CSV", df.to_csv(index=False).encode("utf-8"), file_name="query.csv",
                           mime="text/csv", key="sql_dl_csv", icon=":material/download:")
        buf = io.BytesIO()
        try:
            df.to_parquet(buf, index=False)
            d2.download_button("Parquet", buf.getvalue(), file_name="query.parquet",
                               mime="application/vnd.apache.parquet", key="sql_dl_parquet",
                               icon=":material/download:")
        except Exception as e:  # noqa: BLE001 e.g. a column type Parquet cannot hold
            d2.caption(f"Parquet not available for this result ({type(e).__name__}).")
        if len(df.columns) >= 2 and len(df):
            with st.expander("Quick chart", expanded=True):
                cols = list(df.columns)
                q1, q2, q3, q4 = st.columns(4)
                for k, opts in (("sql_x", cols), ("sql_y", cols), ("sql_color", ["(none)"] + cols)):
                    queries.keep_valid(k, opts)
                x = q1.selectbox("x", cols, key="sql_x")
                y = q2.selectbox("y", cols, index=1, key="sql_y")
                kind = q3.selectbox("chart", quick_charts.QUICK_KINDS, key="sql_kind")
                color = q4.selectbox("colour by", ["(none)"] + cols, key="sql_color",
                                     index=(["(none)"] + cols).index("preset") if "preset" in cols else 0)
                try:
                    fig = quick_charts.quick_chart(df, x, y, kind, None if color == "(none)" else color)
                    export.show(fig, key="sql_chart", page="SQL", theme=None,
                                provenance={"query": "sql-console", "sql": res.sql, "params": {},
                                             "run_ids": sorted(df["run_id"].astype(str).unique())
                                             if "run_id" in df else [], "store": path})
                except Exception as e:  # noqa: BLE001 e.g. non-plottable columns
                    st.error(f"Cannot chart {y} against {x}: {e}")
