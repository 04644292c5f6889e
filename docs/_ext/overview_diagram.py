"""The "How it works" diagram on the front page, drawn as SVG in pure Python.

The ``.. overview-diagram::`` directive (``aioscheduler_docs.py``) puts the
SVG inline in the page, so building the docs needs no Graphviz or any other
program. To look at it on its own::

    python docs/_ext/overview_diagram.py /tmp/overview.svg

The layout is a fixed grid of two columns, every arrow straight or with one
bend::

    your code - - - wake-up - - - -.
        | a Task                   |
    .- one scheduler - - - - - - - | - - - -.
    :   pending jobs -- due --> serving task :
    '- - - - - - - - - - - - - - - | - - - -'
                                   | start
    Task outcome <-- result --- engine
        :
    a failed job

Text is measured with Helvetica's font metrics (Arial and Liberation Sans
have the same widths), with some slack for wider fallback fonts; boxes grow
to fit their text, so editing a label needs no coordinates. In a label, text
between backticks is set in a monospace font.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from html import escape
from pathlib import Path

# -- content ------------------------------------------------------------------

# (title, lines, style) of each box.
CALL = (
    "your code",
    [
        "`start_after(delay, fn, *args)`",
        "`start_soon(fn, *args)`",
        "`schedule(coro, ...)`",
    ],
    "code",
)
PENDING = ("pending jobs", ["Timed: deadline heap", "Queued: FIFO / LIFO"], "plain")
SERVING = ("serving task", ["sleeps until the next", "deadline or a wake-up"], "plain")
ENGINE = (
    "engine",
    [
        "asyncio: an asyncio task per job",
        "Trio: an AnyIO task group,",
        "a cancel scope per job",
        "Queued: inline, in the serving task",
    ],
    "plain",
)
OUTCOME = ("Task outcome", ["finished \u00b7 failed \u00b7 cancelled"], "ok")
FAILED = (
    "a failed job",
    [
        'is logged on `"aioscheduler"`,',
        "or passed to `on_error(task, exc)`,",
        'or raised with `on_error="raise"`',
    ],
    "error",
)
CLUSTER_LABEL = "one scheduler"
A_TASK = "a Task"
WAKE_UP = "wake-up, if due before its sleep"
DUE_JOBS = "due jobs"
START = "start"
RESULT = "result or exception"

# -- style --------------------------------------------------------------------

SANS = "Helvetica, Arial, 'Liberation Sans', 'Nimbus Sans', sans-serif"
MONO = "Menlo, Consolas, 'Liberation Mono', 'DejaVu Sans Mono', monospace"
TITLE_SIZE = 14.0
BODY_SIZE = 13.0
MONO_SIZE = 12.5
LABEL_SIZE = 12.5
LINE_HEIGHT = 1.4  # times the font size
SLACK = 1.06  # room for fonts somewhat wider than Helvetica

PAD_X = 16.0  # inside a box
PAD_Y = 8.0
MARGIN = 8.0  # around the drawing
CLUSTER_PAD = 16.0  # inside the dashed "one scheduler" frame
CLUSTER_TOP = 30.0  # room for its label
GAP_Y = 46.0  # between rows, for a vertical arrow and its label
ARROW = 8.0  # arrowhead length

INK = "#1f2d3d"
LABEL_INK = "#33475b"
EDGE = "#4a6a8a"
CLUSTER = "#8fa6be"
STYLES = {  # fill, stroke
    "code": ("#fff7e0", "#b08a2e"),
    "plain": ("#eef3f8", "#4a6a8a"),
    "ok": ("#e8f5e9", "#4a8a5a"),
    "error": ("#fdecea", "#a0524a"),
}

# -- text metrics -------------------------------------------------------------

# Advance widths in 1/1000 em of Helvetica and Helvetica-Bold (Adobe AFM),
# for the characters " " to "~".
_REGULAR = (
    "278 278 355 556 556 889 667 191 333 333 389 584 278 333 278 278 "
    "556 556 556 556 556 556 556 556 556 556 278 278 584 584 584 556 "
    "1015 667 667 722 722 667 611 778 722 278 500 667 556 833 722 778 "
    "667 778 722 667 611 722 667 944 667 667 611 278 278 278 469 556 "
    "333 556 556 500 556 556 278 556 556 222 222 500 222 833 556 556 "
    "556 556 333 500 278 556 500 722 500 500 500 334 260 334 584"
)
_BOLD = (
    "278 333 474 556 556 889 722 238 333 333 389 584 278 333 278 278 "
    "556 556 556 556 556 556 556 556 556 556 333 333 584 584 584 611 "
    "975 722 722 722 722 667 611 778 722 278 556 722 611 833 722 778 "
    "667 778 722 667 611 722 667 944 667 667 611 333 278 333 584 556 "
    "333 556 611 556 611 556 333 611 611 278 278 556 278 889 611 611 "
    "611 611 389 556 333 611 556 778 556 556 500 389 280 389 584"
)
_WIDTHS = {
    bold: {chr(32 + i): int(w) for i, w in enumerate(table.split())}
    for bold, table in ((False, _REGULAR), (True, _BOLD))
}
_OTHER = {"\u00b7": 278, "\u2014": 1000}


def _sans_width(text: str, size: float, *, bold: bool = False) -> float:
    widths = _WIDTHS[bold]
    units = sum(widths.get(ch, _OTHER.get(ch, 600)) for ch in text)
    return units * size / 1000 * SLACK


def _runs(line: str) -> list[tuple[str, bool]]:
    """Split a label line into (text, is_code) runs at its backticks."""
    return [(part, i % 2 == 1) for i, part in enumerate(line.split("`")) if part]


def _line_width(line: str, size: float = BODY_SIZE) -> float:
    return sum(
        len(text) * MONO_SIZE * 0.6 * SLACK if code else _sans_width(text, size)
        for text, code in _runs(line)
    )


def _text(
    x: float,
    y: float,
    line: str,
    *,
    size: float = BODY_SIZE,
    anchor: str = "middle",
    bold: bool = False,
    fill: str = INK,
) -> str:
    """One line of text with its baseline at y; `code` runs in monospace."""
    spans = "".join(
        f'<tspan font-family="{escape(MONO)}" font-size="{MONO_SIZE:g}">'
        f"{escape(text, quote=False)}</tspan>"
        if code
        else escape(text, quote=False)
        for text, code in _runs(line)
    )
    weight = ' font-weight="bold"' if bold else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size:g}"{weight}'
        f' text-anchor="{anchor}" fill="{fill}">{spans}</text>'
    )


# -- shapes -------------------------------------------------------------------


@dataclass
class Box:
    title: str
    lines: list[str]
    style: str
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0

    @property
    def natural_width(self) -> float:
        title = _sans_width(self.title, TITLE_SIZE, bold=True)
        return max([title, *map(_line_width, self.lines)]) + 2 * PAD_X

    @property
    def natural_height(self) -> float:
        return 2 * PAD_Y + LINE_HEIGHT * (TITLE_SIZE + BODY_SIZE * len(self.lines))

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h

    def svg(self) -> str:
        fill, stroke = STYLES[self.style]
        # Center the text block vertically (the box may be taller than it).
        top = self.cy - (self.natural_height - 2 * PAD_Y) / 2
        parts = [
            f'<rect x="{self.x:.1f}" y="{self.y:.1f}" width="{self.w:.1f}"'
            f' height="{self.h:.1f}" rx="9" fill="{fill}" stroke="{stroke}"'
            ' stroke-width="1.3"/>'
        ]
        rows = [(self.title, TITLE_SIZE, True)]
        rows += [(line, BODY_SIZE, False) for line in self.lines]
        for line, size, bold in rows:
            height = size * LINE_HEIGHT
            baseline = top + height / 2 + size * 0.35
            parts.append(_text(self.cx, baseline, line, size=size, bold=bold))
            top += height
        return "\n".join(parts)


def _arrow(points: list[tuple[float, float]], *, dashed: bool = False) -> str:
    """A polyline of horizontal and vertical segments, with a head at its end."""
    (x0, y0), (x1, y1) = points[-2], points[-1]
    dx = (x1 > x0) - (x1 < x0)
    dy = (y1 > y0) - (y1 < y0)
    # Stop the line at the base of the head, so its end does not poke out.
    base = (x1 - dx * ARROW, y1 - dy * ARROW)
    half = ARROW * 0.5
    head = [
        (x1, y1),
        (base[0] - dy * half, base[1] + dx * half),
        (base[0] + dy * half, base[1] - dx * half),
    ]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in [*points[:-1], base])
    dash = ' stroke-dasharray="5 4"' if dashed else ""
    head_points = " ".join(f"{x:.1f},{y:.1f}" for x, y in head)
    return (
        f'<polyline points="{path}" fill="none" stroke="{EDGE}"'
        f' stroke-width="1.4"{dash}/>\n'
        f'<polygon points="{head_points}" fill="{EDGE}"/>'
    )


def _label(x: float, y: float, text: str, anchor: str = "middle") -> str:
    return _text(x, y, text, size=LABEL_SIZE, anchor=anchor, fill=LABEL_INK)


# -- the diagram --------------------------------------------------------------


def render(alt: str = "") -> str:
    """Return the diagram as an ``<svg>`` element; *alt* describes it."""
    call, pending, serving, engine, outcome, failed = (
        Box(title, list(lines), style)
        for title, lines, style in (CALL, PENDING, SERVING, ENGINE, OUTCOME, FAILED)
    )
    left = [call, pending, outcome, failed]
    right = [serving, engine]

    # Columns: every box in a column is as wide as the widest.
    left_w = max(box.natural_width for box in left)
    right_w = max(box.natural_width for box in right)
    for boxes, width in ((left, left_w), (right, right_w)):
        for box in boxes:
            box.w = width
            box.h = box.natural_height
    gap = max(_line_width(t, LABEL_SIZE) for t in (DUE_JOBS, RESULT)) + 36
    left_x = MARGIN + CLUSTER_PAD
    right_x = left_x + left_w + gap
    width = right_x + right_w + CLUSTER_PAD + MARGIN
    for box in left:
        box.x = left_x
    for box in right:
        box.x = right_x

    # Rows.
    call.y = MARGIN
    cluster_y = call.bottom + GAP_Y
    pending.y = serving.y = cluster_y + CLUSTER_TOP
    pending.h = serving.h = max(pending.h, serving.h)
    cluster_bottom = pending.bottom + CLUSTER_PAD
    engine.y = cluster_bottom + GAP_Y
    outcome.y = engine.cy - outcome.h / 2
    failed.y = outcome.bottom + GAP_Y * 0.8
    height = max(engine.bottom, failed.bottom) + MARGIN

    label_lift = 7.0  # baseline of a label above its horizontal arrow
    label_side = 8.0  # gap between a vertical arrow and its label
    body = [
        f'<rect x="{MARGIN:.1f}" y="{cluster_y:.1f}" width="{width - 2 * MARGIN:.1f}"'
        f' height="{cluster_bottom - cluster_y:.1f}" rx="12" fill="none"'
        f' stroke="{CLUSTER}" stroke-width="1.2" stroke-dasharray="6 4"/>',
        _text(
            MARGIN + 12,
            cluster_y + 20,
            CLUSTER_LABEL,
            anchor="start",
            fill=LABEL_INK,
        ),
        *(box.svg() for box in (call, pending, serving, engine, outcome, failed)),
        # your code -> pending jobs
        _arrow([(call.cx, call.bottom), (call.cx, pending.y)]),
        _label(call.cx + label_side, call.bottom + GAP_Y / 2 + 4, A_TASK, "start"),
        # your code -> serving task: the wake-up
        _arrow(
            [(call.right, call.cy), (serving.cx, call.cy), (serving.cx, serving.y)],
            dashed=True,
        ),
        _label((call.right + serving.cx) / 2, call.cy - label_lift, WAKE_UP),
        # pending jobs -> serving task
        _arrow([(pending.right, pending.cy), (serving.x, serving.cy)]),
        _label((pending.right + serving.x) / 2, pending.cy - label_lift, DUE_JOBS),
        # serving task -> engine
        _arrow([(serving.cx, serving.bottom), (serving.cx, engine.y)]),
        _label(
            serving.cx + label_side, (cluster_bottom + engine.y) / 2 + 4, START, "start"
        ),
        # engine -> Task outcome
        _arrow([(engine.x, engine.cy), (outcome.right, engine.cy)]),
        _label((outcome.right + engine.x) / 2, engine.cy - label_lift, RESULT),
        # Task outcome -> a failed job
        _arrow([(outcome.cx, outcome.bottom), (outcome.cx, failed.y)], dashed=True),
    ]
    title = f"<title>{escape(alt, quote=False)}</title>\n" if alt else ""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img"'
        f' width="{width:.0f}" height="{height:.0f}"'
        f' viewBox="0 0 {width:.1f} {height:.1f}"'
        f' font-family="{escape(SANS)}" aria-label="{escape(alt)}">\n'
        f"{title}" + "\n".join(body) + "\n</svg>\n"
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: python {sys.argv[0]} OUTPUT.svg")
    Path(sys.argv[1]).write_text(render("aioscheduler overview"), encoding="utf-8")
