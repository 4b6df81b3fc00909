"""Server-rendered SVG charts: no script, no external library."""

from __future__ import annotations

import datetime as dt
from html import escape

WIDTH, HEIGHT, PAD_L, PAD_B, PAD_T = 720, 200, 64, 24, 12


def spend_chart(days: list[tuple[dt.date, int]]) -> str:
    """A bar chart of credits per day, labelled in USD."""
    top = max((c for _, c in days), default=0) or 1_000_000  # an empty chart still reads $0-$1
    plot_w, plot_h = WIDTH - PAD_L - 8, HEIGHT - PAD_B - PAD_T
    bar_w = plot_w / max(len(days), 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="spend per day" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{PAD_L}" y1="{PAD_T + plot_h}" x2="{WIDTH - 8}" y2="{PAD_T + plot_h}" class="axis"/>',
        f'<text x="{PAD_L - 6}" y="{PAD_T + 8}" text-anchor="end" class="tick">{escape(usd_display(top))}</text>',
        f'<text x="{PAD_L - 6}" y="{PAD_T + plot_h}" text-anchor="end" class="tick">$0</text>',
    ]
    for i, (day, credits) in enumerate(days):
        h = round(plot_h * credits / top, 1)
        x = PAD_L + i * bar_w + 1
        parts.append(
            f'<rect x="{x:.1f}" y="{PAD_T + plot_h - h:.1f}" width="{max(bar_w - 2, 1):.1f}" height="{h}" class="bar">'
            f"<title>{day.isoformat()}: {escape(usd_display(credits))}</title></rect>"
        )
        if (len(days) - 1 - i) % 7 == 0:  # weekly labels, ending on today
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle" class="tick">'
                         f"{day.strftime('%m-%d')}</text>")
    parts.append("</svg>")
    return "".join(parts)


def usd_display(credits: int | None) -> str:
    """Credits as a readable USD amount: cents for sums, more places only for sub-cent amounts."""
    from decimal import Decimal

    if credits is None:
        return "—"
    usd = Decimal(credits) / 1_000_000
    if credits == 0 or abs(usd) >= Decimal("0.01"):
        return f"${usd:,.2f}"
    return f"${usd.normalize():f}"
