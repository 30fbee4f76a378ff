"""A study's table drawn with matplotlib (SVG and PNG): bars with their standard deviation, or
lines over IPC (the study's Figure 4), and the paper's figures as black crosses where it has any.
"""

from __future__ import annotations

from pathlib import Path

from vdcbench.core.atomic_file import atomic_path
from vdcbench.study.tables import FULL_DATA_ROW, StudyTable

FORMATS = ("svg", "png")


def plot_table(table: StudyTable, stem: Path) -> list[Path]:
    """Write ``stem.svg`` and ``stem.png``; their paths."""
    import matplotlib
    matplotlib.use("Agg")           # files only: no display on a cluster node
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(max(6.0, 1.2 * len(table.pivot.rows) + 4), 4.5))
    try:
        if table.study.plot == "lines" and "ipc" in table.study.columns:
            _lines(table, axes)
        else:
            _bars(table, axes)
        metric = {"top1": "top-1", "top5": "top-5"}[table.metric]
        axes.set_ylabel(f"{metric} % (mean ± std)")
        axes.set_title(f"{table.study.title}\n{table.dataset}; the study's {table.study.paper}",
                       fontsize=9)
        axes.grid(axis="y", alpha=0.3)
        axes.legend(fontsize=7, ncol=2)
        figure.tight_layout()
        paths = []
        for fmt in FORMATS:
            path = stem.with_suffix(f".{fmt}")
            with atomic_path(path) as temporary:
                # metadata without a date: the same table draws the same SVG
                figure.savefig(temporary, format=fmt, dpi=120,
                               metadata={"Date": None} if fmt == "svg" else None)
            paths.append(path)
        return paths
    finally:
        plt.close(figure)


def _bars(table: StudyTable, axes) -> None:
    rows = [r for r in table.pivot.rows if r != FULL_DATA_ROW]
    columns = table.pivot.columns
    width = 0.8 / max(1, len(columns))
    paper_named = False
    for j, column in enumerate(columns):
        xs, means, stds = [], [], []
        for i, row in enumerate(rows):
            cell = table.pivot.cells.get((row, column))
            if cell is not None:
                xs.append(i + (j - (len(columns) - 1) / 2) * width)
                means.append(cell.mean)
                stds.append(cell.std)
        axes.bar(xs, means, width, yerr=stds, capsize=2, label=column)
        paper = table.paper.get(column, {})
        px = [i + (j - (len(columns) - 1) / 2) * width for i, row in enumerate(rows) if row in paper]
        py = [paper[row].value for row in rows if row in paper]
        if px:
            axes.scatter(px, py, marker="x", color="black", zorder=3,
                         label=None if paper_named else "the paper")
            paper_named = True
    axes.set_xticks(range(len(rows)), rows, rotation=20, ha="right", fontsize=8)


def _lines(table: StudyTable, axes) -> None:
    series: dict[tuple[str, str], list[tuple[int, float, float]]] = {}
    paper: dict[str, list[tuple[int, float]]] = {}
    for (row, column), cell in table.pivot.cells.items():
        values = table.axes[(row, column)]
        rest = " ".join(values[a] for a in table.study.columns if a != "ipc")
        series.setdefault((row, rest), []).append((int(values["ipc"]), cell.mean, cell.std))
    for column, by_row in table.paper.items():
        for row, figure in by_row.items():
            at = dict(figure.at)
            name = " ".join([row] + [at[a] for a in table.study.columns if a != "ipc"])
            paper.setdefault(name, []).append((int(at["ipc"]), figure.value))
    # Figure 4's reading: a colour per method (row), a line style per label strategy.
    rows = [r for r in table.pivot.rows if any(r == row for row, _ in series)]
    rests = sorted({rest for _, rest in series}, key=lambda r: (r not in table.study.labels,
                   table.study.labels.index(r) if r in table.study.labels else 0, r))
    styles = ["-", "--", ":", "-."]
    for (row, rest), points in sorted(series.items(),
                                      key=lambda kv: (rows.index(kv[0][0]), rests.index(kv[0][1]))):
        points.sort()
        axes.errorbar([p[0] for p in points], [p[1] for p in points], [p[2] for p in points],
                      marker="o", capsize=2, label=f"{row} {rest}".strip(),
                      color=f"C{rows.index(row) % 10}",
                      linestyle=styles[rests.index(rest) % len(styles)])
    for n, (name, points) in enumerate(sorted(paper.items())):
        points.sort()
        axes.plot([p[0] for p in points], [p[1] for p in points], "x--", color="black",
                  alpha=0.6, label="the paper" if n == 0 else None)
    axes.set_xlabel("IPC")
