"""One self-contained HTML page summarising the dataset database: tables and plots (matplotlib,
Agg backend, embedded as base64 PNG), no external file, script or font.

Every figure comes from an SQL query on the database of ``ptmscrape/export/sqlite.py`` that returns
a few rows (counts per group), so memory does not grow with the number of models.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

from ptmscrape.export import sqlite as export_db  # noqa: E402

TITLE = "ptmscrape dataset report"
TOP = 15

_TOP_COLUMNS = {"licenses": "license", "tasks": "task", "libraries": "library",
                "architectures": "architecture"}


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(title: str, width: float = 7, height: float = 3.6):
    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_title(title)
    return fig, ax


def _label(value) -> str:
    """Hub data as a plot label: cut short, and a '$' never starts (possibly malformed) mathtext."""
    return "(none)" if value is None else str(value)[:60].replace("$", r"\$")


def _barh(title: str, rows: list[tuple[str, int]], xlabel: str = "models") -> str:
    fig, ax = _figure(title, height=max(2.0, 0.3 * len(rows) + 1))
    labels = [_label(k) for k, _ in rows][::-1]
    ax.barh(labels, [v for _, v in rows][::-1], color="#3b75af")
    ax.set_xlabel(xlabel)
    return _png(fig)


def _table(headers: list[str], rows: list[tuple]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.1%}" if 0 <= value <= 1 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _when(text) -> datetime | None:
    """A record's ``CrawledAt`` (``2025-06-01T12:00:00Z``) as a UTC time; None if it is none."""
    try:
        when = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def _halves(column: str) -> str:
    """SQL summing an integer column exactly whatever its values: the sums of each value's upper
    and lower 32 bits, each within 64 bits (up to 2**31 rows), put together by :func:`_whole`."""
    return f"sum({column} >> 32), sum({column} & 4294967295)"


def _whole(upper: int | None, lower: int | None) -> int | None:
    """The sum from :func:`_halves` (None: no value to sum)."""
    return None if upper is None or lower is None else (upper << 32) + lower


def sections(con: sqlite3.Connection) -> list[tuple[str, str]]:
    """(heading, HTML) of every section of the report."""
    q = lambda sql, *p: con.execute(sql, p).fetchall()  # noqa: E731
    out: list[tuple[str, str]] = []
    total = q("SELECT count(*) FROM model")[0][0]

    per_hub = q("SELECT hub, count(*) FROM model GROUP BY hub ORDER BY 2 DESC")
    # Counts may each be up to 2**63 - 1: summed in halves, as SQLite's sum() of them can overflow.
    summary = [(hub, n, _whole(dh, dl), _whole(lh, ll), *rest) for hub, n, dh, dl, lh, ll, *rest in q(
        f"""SELECT hub, count(*), {_halves("downloads")}, {_halves("likes")},
                   avg(EXISTS (SELECT 1 FROM model_paper p WHERE p.model_id = m.model_id)),
                   avg(EXISTS (SELECT 1 FROM model_dataset d WHERE d.model_id = m.model_id)),
                   max(crawled_at)
            FROM model m GROUP BY hub ORDER BY 2 DESC""")]
    out.append(("Models per hub",
                f"<p>{total:,} models from {len(per_hub)} hub(s); "
                f"{q('SELECT count(*) FROM crawl')[0][0]:,} crawl snapshot(s), "
                f"{q('SELECT count(*) FROM observation')[0][0]:,} observations.</p>"
                + _table(["hub", "models", "downloads", "likes", "with a paper", "with a dataset",
                          "last crawled"], summary)
                + (f'<img alt="models per hub" src="{_barh("Models per hub", per_hub)}">' if per_hub else "")))

    growth = q("""SELECT c.hub, min(o.crawled_at), count(*) FROM observation o
                  JOIN crawl c ON c.crawl_id = o.crawl_id GROUP BY c.crawl_id ORDER BY 2""")
    if growth:
        # One time axis for every hub (not one category per label, in the order hubs are drawn).
        timed = [(hub, when, n) for hub, started, n in growth if (when := _when(started)) is not None]
        plot = ""
        if timed:
            fig, ax = _figure("Models per crawl snapshot")
            for hub in sorted({t[0] for t in timed}):
                points = [(when, n) for h, when, n in timed if h == hub]
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=_label(hub))
            ax.set_ylabel("models observed")
            ax.legend()
            fig.autofmt_xdate()
            plot = f'<img alt="growth" src="{_png(fig)}">'
        out.append(("Growth across snapshots", _table(["hub", "crawl started", "models"], growth[-20:]) + plot))

    for label, column in _TOP_COLUMNS.items():
        rows = q(f"SELECT {column}, count(*) FROM model WHERE {column} IS NOT NULL "
                 f"GROUP BY {column} ORDER BY 2 DESC, 1 LIMIT {TOP}")
        missing = q(f"SELECT count(*) FROM model WHERE {column} IS NULL")[0][0]
        body = f"<p>{missing:,} model(s) without one.</p>"
        if rows:
            body += f'<img alt="top {label}" src="{_barh(f"Top {label}", rows)}">'
        out.append((f"Top {label}", body))

    reported, top, zero = q("SELECT count(*), max(downloads), total(downloads = 0) FROM model "
                            "WHERE downloads IS NOT NULL")[0]
    if reported:
        fig, ax = _figure("Downloads per model (log scale)")
        decades = max(1, math.ceil(math.log10(top + 1)))
        edges = [0, 1] + [10 ** (i / 2) for i in range(1, 2 * decades + 1)]  # two bins a decade
        # Counted by SQL, bin by bin: memory does not grow with the number of models.
        case = " ".join(f"WHEN downloads < {edge!r} THEN {i}" for i, edge in enumerate(edges[1:]))
        per_bin = dict(q(f"SELECT CASE {case} ELSE {len(edges) - 2} END, count(*) FROM model "
                         "WHERE downloads IS NOT NULL GROUP BY 1"))
        ax.hist(edges[:-1], bins=edges, weights=[per_bin.get(i, 0) for i in range(len(edges) - 1)],
                color="#3b75af")
        ax.set_xscale("symlog", linthresh=1)
        ax.set_yscale("log")
        ax.set_xlabel("downloads")
        ax.set_ylabel("models")
        out.append(("Downloads distribution",
                    f"<p>{reported:,} models report downloads ({int(zero):,} with none); "
                    f"the most downloaded has {top:,}.</p>" f'<img alt="downloads" src="{_png(fig)}">'))

    status = q("""SELECT CASE WHEN clone_status LIKE 'failed:%' THEN 'failed' ELSE clone_status END,
                         count(*) FROM model GROUP BY 1 ORDER BY 2 DESC""")
    reasons = q("""SELECT substr(clone_status, 9), count(*) FROM model WHERE clone_status LIKE 'failed:%'
                   GROUP BY 1 ORDER BY 2 DESC LIMIT 10""")
    out.append(("Clone status", (f'<img alt="clone status" src="{_barh("Clone status", status)}">'
                                 if status else "") + (_table(["failure", "models"], reasons) if reasons else "")))

    coverage = q("""SELECT hub,
                      avg(EXISTS (SELECT 1 FROM model_paper p WHERE p.model_id = m.model_id)),
                      avg(EXISTS (SELECT 1 FROM model_dataset d WHERE d.model_id = m.model_id))
                    FROM model m GROUP BY hub ORDER BY hub""")
    if coverage:
        fig, ax = _figure("Models with a paper / a dataset")
        xs = range(len(coverage))
        ax.bar([x - 0.2 for x in xs], [100 * c[1] for c in coverage], width=0.4, label="paper (DOI)")
        ax.bar([x + 0.2 for x in xs], [100 * c[2] for c in coverage], width=0.4, label="dataset")
        ax.set_xticks(list(xs), [_label(c[0]) for c in coverage])
        ax.set_ylabel("% of the hub's models")
        ax.legend()
        papers = q("SELECT count(DISTINCT paper_id) FROM model_paper")[0][0]  # those models name
        datasets = q("SELECT count(DISTINCT dataset_id) FROM model_dataset")[0][0]
        out.append(("Papers and datasets",
                    f"<p>{papers:,} distinct papers, {datasets:,} distinct datasets.</p>"
                    f'<img alt="coverage" src="{_png(fig)}">'
                    + _table(["most cited paper (DOI)", "models"], q(
                        """SELECT p.doi, count(*) FROM model_paper mp JOIN paper p USING (paper_id)
                           GROUP BY p.paper_id ORDER BY 2 DESC, 1 LIMIT 10"""))))

    declared = q("SELECT count(DISTINCT model_id), count(*) FROM model_base")[0]
    edges = q("SELECT count(*), count(DISTINCT model_id), count(DISTINCT base_model_id) FROM lineage")[0]
    bases = q("""SELECT b.base_model, count(*) FROM model_base b GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10""")
    out.append(("Lineage",
                _table(["models naming a base model", "base-model references", "edges between known models",
                        "derived models (known base)", "known base models"],
                       [(declared[0], declared[1], edges[0], edges[1], edges[2])])
                + (_table(["most used base model", "derived models"], bases) if bases else "")))
    out.extend(_history_section(q))
    return out


_HISTORY_TABLES = ("commit", "ref", "discussion", "discussion_event", "file")


def _history_section(q) -> list[tuple[str, str]]:
    """Counts of the history tables (``-a history=…``), when the crawls stored any."""
    present = {r[0] for r in q("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
    if not set(_HISTORY_TABLES) <= present:
        return []
    counts = {t: q(f'SELECT count(*), count(DISTINCT model_id) FROM "{t}"')[0] for t in _HISTORY_TABLES}
    if not any(n for n, _ in counts.values()):
        return []
    refs = dict(q("SELECT ref_type, count(*) FROM ref GROUP BY 1"))
    pulls, closed = q("SELECT total(is_pull_request), total(status != 'open') FROM discussion")[0]
    size, lfs = q("SELECT total(size), total(lfs_size) FROM file WHERE type = 'file'")[0]
    dropped = q('SELECT count(*) FROM "commit" WHERE dropped_at IS NOT NULL')[0][0]
    body = _table(
        ["", "rows", "models"],
        [(f"commits ({dropped:,} dropped by a force-push)", *counts["commit"]),
         (f"refs ({refs.get('branch', 0):,} branches, {refs.get('tag', 0):,} tags, "
          f"{refs.get('pull_request', 0):,} pull requests)", *counts["ref"]),
         (f"discussions ({int(pulls):,} pull requests, {int(closed):,} not open)", *counts["discussion"]),
         ("discussion events", *counts["discussion_event"]),
         (f"files at the last revision ({int(size) / 2**30:,.2f} GiB, {int(lfs) / 2**30:,.2f} GiB in LFS)",
          *counts["file"])])
    statuses = q("""SELECT CASE WHEN is_pull_request THEN 'pull request: ' ELSE 'discussion: ' END || status,
                           count(*) FROM discussion GROUP BY 1 ORDER BY 2 DESC, 1""")
    if statuses:
        body += f'<img alt="discussions per status" src="{_barh("Discussions per status", statuses, "discussions")}">'
    busiest = q("""SELECT m.full_name, count(*) FROM "commit" c JOIN model m USING (model_id)
                   WHERE c.dropped_at IS NULL GROUP BY c.model_id ORDER BY 2 DESC, 1 LIMIT 10""")
    if busiest:
        body += _table(["most commits (in the current history)", "commits"], busiest)
    return [("History and community (Hugging Face)", body)]


_CSS = """body{font-family:sans-serif;max-width:60em;margin:1em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}
img{max-width:100%;display:block;margin:.5em 0}h2{border-bottom:1px solid #ddd}"""


def render(con: sqlite3.Connection) -> str:
    with plt.rc_context({"text.usetex": False}):
        parts = sections(con)
    body = "".join(f"<section><h2>{html.escape(h)}</h2>{content}</section>" for h, content in parts)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{TITLE}</title>'
            f"<style>{_CSS}</style></head><body><h1>{TITLE}</h1>{body}</body></html>\n")


def write_report(db_path: str | os.PathLike[str], out_path: str | os.PathLike[str]) -> Path:
    try:
        con = sqlite3.connect(f"file:{Path(db_path).resolve()}?mode=ro", uri=True,
                              timeout=export_db.BUSY_TIMEOUT)
        try:
            page = render(con)
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise export_db.ExportError(f"{db_path}: {exc}") from None
    out = Path(out_path)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        tmp.write_text(page, encoding="utf-8")
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out
