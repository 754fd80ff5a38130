"""Inline SVG charts drawn on the server: no script, no fonts or libraries from the internet.

Every mark carries its number (``data-value``) and what it stands for (``data-x``,
``data-series``, ``data-funder``/``data-redeemer``), so the charts can be checked against the CSV.
"""

from __future__ import annotations

from markupsafe import Markup, escape

PALETTE = ("#2f6db5", "#e08a1e", "#3a9a5b", "#c0392b", "#7d5ba6", "#6c7a89")


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def bar_chart(chart_id: str, categories: list[str], series: list[tuple[str, str, list[int]]], *,
              width: int = 900, height: int = 260, title: str = "", category_labels: list[str] | None = None) -> Markup:
    """Grouped bars: one group per category, one bar per series (name, label, values)."""
    left, right, top, bottom = 64, 12, 34, 42
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _name, _label, vs in series for v in vs] or [0]
    high, low = max(max(values), 0), min(min(values), 0)
    span = (high - low) or 1
    zero_y = top + plot_h * high / span
    group_w = plot_w / max(len(categories), 1)
    bar_w = max(group_w * 0.8 / max(len(series), 1), 0.5)
    parts = [f'<svg id="{escape(chart_id)}" class="chart" xmlns="http://www.w3.org/2000/svg" role="img" '
             f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMidYMid meet">',
             f'<title>{escape(title)}</title>']
    for tick in sorted({low, 0, high, (high + low) / 2} if high != low else {0}):
        y = zero_y - (tick / span) * plot_h
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{_num(y)}" y2="{_num(y)}"/>'
                     f'<text class="tick" x="{left - 6}" y="{_num(y + 4)}" text-anchor="end">'
                     f'{escape(f"{round(tick):,}")}</text>')
    for index, (name, label, vs) in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        lx = left + index * 150
        parts.append(f'<rect class="legend-swatch" x="{lx}" y="8" width="12" height="12" fill="{colour}"/>'
                     f'<text class="legend" x="{lx + 16}" y="19">{escape(label)}</text>')
        parts.append(f'<g class="series" data-series="{escape(name)}" fill="{colour}">')
        for position, (category, value) in enumerate(zip(categories, vs)):
            x = left + position * group_w + group_w * 0.1 + index * bar_w
            y, h = (zero_y - value / span * plot_h, value / span * plot_h) if value >= 0 else (
                zero_y, -value / span * plot_h)
            parts.append(f'<rect class="bar" data-x="{escape(category)}" data-value="{value}" x="{_num(x)}" '
                         f'y="{_num(y)}" width="{_num(bar_w)}" height="{_num(h)}">'
                         f'<title>{escape(category)}: {escape(label)} {value:,}</title></rect>')
        parts.append("</g>")
    shown = category_labels or categories
    marks = sorted({0, len(categories) // 2, len(categories) - 1}) if categories else []
    for position in marks:
        x = left + position * group_w + group_w / 2
        parts.append(f'<text class="axis" x="{_num(x)}" y="{height - bottom + 18}" text-anchor="middle">'
                     f'{escape(shown[position])}</text>')
    parts.append(f'<line class="axis-line" x1="{left}" x2="{width - right}" y1="{_num(zero_y)}" y2="{_num(zero_y)}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def matrix_chart(chart_id: str, parties: list[tuple[str, str]], cells: dict[tuple[str, str], int], *,
                 title: str = "", cell: int = 64, focus: str | None = None) -> Markup:
    """A heat map of points by funder (rows) and redeemer (columns); zeros pale.

    With ``focus`` (a partner's own report) only that partner's row and column are drawn: flows
    between two other partners are not part of its report and are left blank, not shown as 0.
    """
    label_w, head_h = 150, 70
    n = len(parties)
    width, height = label_w + n * cell + 8, head_h + n * cell + 8
    high = max(cells.values(), default=0) or 1
    parts = [f'<svg id="{escape(chart_id)}" class="chart matrix" xmlns="http://www.w3.org/2000/svg" role="img" '
             f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">', f'<title>{escape(title)}</title>']
    for index, (_pid, name) in enumerate(parties):
        x = label_w + index * cell + cell / 2
        parts.append(f'<text class="col-head" x="{_num(x)}" y="{head_h - 8}" text-anchor="middle">'
                     f'{escape(name[:14])}</text>')
        parts.append(f'<text class="row-head" x="{label_w - 8}" y="{_num(head_h + index * cell + cell / 2 + 4)}" '
                     f'text-anchor="end">{escape(name[:20])}</text>')
    for row, (funder, _fname) in enumerate(parties):
        for column, (redeemer, _rname) in enumerate(parties):
            if focus is not None and focus not in (funder, redeemer):
                continue
            value = cells.get((funder, redeemer), 0)
            shade = 0.08 + 0.92 * max(value, 0) / high if value else 0.0
            x, y = label_w + column * cell, head_h + row * cell
            parts.append(f'<rect class="cell" data-funder="{escape(funder)}" data-redeemer="{escape(redeemer)}" '
                         f'data-value="{value}" x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" '
                         f'fill="#2f6db5" fill-opacity="{shade:.3f}" stroke="#c8d3e0"/>'
                         f'<text class="cell-value{" on-dark" if shade > 0.6 else ""}" x="{x + cell / 2 - 1}" '
                         f'y="{y + cell / 2 + 4}" text-anchor="middle">{value:,}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
