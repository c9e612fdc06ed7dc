"""``report.html``: one self-contained page to look at a run's data.

Per feature, the distributions of every dataset side by side (histograms for
numbers, top values for categories) and missing-value rates; every anomaly in
plain language with its likely fix; every skew and drift metric next to its
threshold; every validated span with the rows it read and rejected, those that
are not ok in red. Charts are inline SVG and styles inline CSS: the file opens offline,
with no script and nothing fetched from the web.
"""

import datetime
import html
import os
from collections.abc import Sequence

from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from pipelines import layout
from pipelines.records import atomic_files
from pipelines.reports.anomalies import Validated
from pipelines.reports.history import Validation

__all__ = ["render", "write_report"]

_COLORS = ("#1f6feb", "#d97706", "#16a34a", "#9333ea", "#dc2626", "#0891b2")
_CHART_WIDTH, _CHART_HEIGHT = 500, 150
# A comparison's bar: green within threshold, red over, grey when it cannot tell.
_BAR_COLORS = {True: "#16a34a", False: "#dc2626", None: "#8c959f"}
_TOP_VALUES = 8


def write_report(run_dir: str, dataset: str, validated: list[Validated],
                 schema: schema_pb2.Schema, spans: Sequence[Validation] = ()) -> str:
    """Renders ``DIR/report.html`` from ``validated`` (the run's splits, then any
    validated spans) and ``spans`` (every entry of validation_summary.json);
    returns its path."""
    page = render(f"{dataset}: data validation report", run_dir, validated, schema, spans)
    path = os.path.join(run_dir, layout.REPORT)
    atomic_files.write_text(path, page)  # whole or not at all: never a 0-byte page
    return path


def render(title: str, subtitle: str, datasets: list[Validated], schema: schema_pb2.Schema,
           spans: Sequence[Validation] = ()) -> str:
    """The whole page."""
    colors = {d.name: _COLORS[i % len(_COLORS)] for i, d in enumerate(datasets)}
    generated = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>{_e(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
        f"<header><h1>{_e(title)}</h1><p>{_e(subtitle)} · generated {generated}</p></header>",
        _summary(datasets),
        _spans(spans),
        _anomalies(datasets),
        _comparisons(datasets),
        _row_skew(spans),
        _features(datasets, schema, colors),
        "</body>", "</html>",
    ]
    return "\n".join(parts)


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _summary(datasets: list[Validated]) -> str:
    rows = []
    for d in datasets:
        findings = d.findings
        features = len({f.feature for f in findings})
        status = ("<span class='ok'>ok</span>" if not findings
                  else f"<span class='bad'>anomalies in {features} features</span>")
        if d.anomalies is None:
            status = "not validated"
        rows.append(f"<tr><td>{_e(d.name)}</td><td class='num'>{d.rows:,}</td>"
                    f"<td>{status}</td></tr>")
    return ("<section id='summary'><h2>Summary</h2><table><thead><tr><th>data</th>"
            "<th>rows</th><th>validation</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></section>")


def _spans(spans: Sequence[Validation]) -> str:
    """Every validated span, oldest first: rows read and rejected, and its
    verdict (failed and not-ok spans in red, with what made them so)."""
    if not spans:
        return ""
    rows = []
    for v in spans:
        css = "ok" if v.ok else "bad"
        problems = "; ".join(v.problems())
        kinds = ", ".join(f"{kind} {count:,}" for kind, count in v.rejected_by_kind.items())
        rejected = f"{v.rejected:,}" + (f" <span class='fix'>({_e(kinds)})</span>"
                                        if kinds else "")
        read = f"{v.read:,}" if v.read is not None else "-"
        rows.append(
            f"<tr class='{'' if v.ok else 'failed'}'><td>{_e(v.span)}</td>"
            f"<td>{_e(v.input or '')}</td><td>{_e(v.validated_at)}</td>"
            f"<td class='num'>{read}</td><td class='num'>{v.rows:,}</td>"
            f"<td class='num'>{rejected}</td><td><span class='{css}'>{_e(v.status)}</span>"
            + (f" <span class='fix'>{_e(problems)}</span>" if problems else "") + "</td></tr>")
    return ("<section id='spans'><h2>Validated spans</h2><table><thead><tr><th>span</th>"
            "<th>input</th><th>validated at</th><th>read</th><th>validated</th>"
            "<th>rejected</th><th>verdict</th></tr></thead><tbody>" + "".join(rows)
            + "</tbody></table></section>")


def _anomalies(datasets: list[Validated]) -> str:
    blocks = []
    for d in datasets:
        if d.anomalies is None:
            continue
        findings = d.findings
        if not findings:
            blocks.append(f"<h3>{_e(d.name)}</h3><p class='ok'>No anomalies.</p>")
            continue
        items = "".join(
            f"<li><span class='tag {f.kind}'>{f.kind}</span> <b>{_e(f.feature)}</b>: "
            f"{_e(f.text)}<br><span class='fix'>Likely fix: {_e(f.fix)}</span></li>"
            for f in findings)
        blocks.append(f"<h3>{_e(d.name)}</h3><ul class='findings'>{items}</ul>")
    return "<section id='anomalies'><h2>Anomalies</h2>" + "".join(blocks) + "</section>"


def _row_skew(spans: Sequence[Validation]) -> str:
    """Per span validated with ``--paired``: each feature's row-by-row
    comparison with the pipeline's computation, the largest mismatch share
    first, how the rows joined, and examples of differing values."""
    blocks = []
    for v in spans:
        paired = v.row_skew
        if not paired:
            continue
        m, threshold = paired["match"], paired["threshold"]
        rows = []
        for f in paired["features"]:
            css = "bad" if f["mismatch_share"] > threshold else "ok"
            rows.append(f"<tr><td>{_e(f['feature'])}</td><td class='num'>{f['compared']:,}</td>"
                        f"<td class='num'>{f['matched']:,}</td>"
                        f"<td class='num'>{f['mismatched']:,}</td>"
                        f"<td class='num'>{f['base_only']:,}</td>"
                        f"<td class='num'>{f['test_only']:,}</td>"
                        f"<td class='num'><span class='{css}'>{f['mismatch_share']:.2%}"
                        f"</span></td></tr>")
        confused = "".join(
            f"<li><code>{_e(name)}</code>: " + ", ".join(
                f"{_e(p['base'])} &rarr; {_e(p['test'])} &times;{p['count']:,}" for p in pairs)
            + "</li>" for name, pairs in paired["confusion"].items())
        examples = "".join(
            "<li>" + _e(", ".join(f"{k}={val!r}" for k, val in e["key"].items())) + ": "
            + _e("; ".join(f"{name}: {d['base']!r} computed, {d['test']!r} served"
                           for name, d in e["differs"].items())) + "</li>"
            for e in paired["examples"][:10])
        blocks.append(
            f"<h3>span {_e(v.span)}</h3><p>{_e(v.input or '')} against the pipeline's "
            f"computation of {_e(paired['base']['input'])}, joined by "
            f"{_e(', '.join(paired['keys']))}: {m['pairs']:,} pairs; keys only in the raw "
            f"rows {m['keys_only_in_base']:,}, only in serving {m['keys_only_in_test']:,}, "
            f"duplicated (not compared) {m['duplicate_keys']:,}. A share over "
            f"{threshold:.2%} is skew.</p>"
            "<table><thead><tr><th>feature</th><th>compared</th><th>matched</th>"
            "<th>mismatched</th><th>only computed</th><th>only served</th>"
            "<th>mismatch share</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
            + (f"<p>Confused values:</p><ul class='findings'>{confused}</ul>" if confused else "")
            + (f"<p>Examples:</p><ul class='findings'>{examples}</ul>" if examples else ""))
    if not blocks:
        return ""
    return ("<section id='row-skew'><h2>Row-by-row skew</h2><p>Served features against "
            "what the pipeline computes from the same raw rows (<code>validate "
            "--paired</code>).</p>" + "".join(blocks) + "</section>")


def _comparisons(datasets: list[Validated]) -> str:
    rows = []
    for d in datasets:
        if d.anomalies is None:
            continue
        for kind, against in (("skew", "training"), ("drift", "previous span")):
            for feature, m in d.comparisons(kind).items():
                fill = min(m["value"] / m["threshold"], 2.0) * 50 if m["threshold"] else 0
                css = {True: "ok", False: "bad"}.get(m["ok"], "unsure")
                status = f"<span class='{css}'>{_e(m['verdict'])}</span>"
                if "noise" in m and m["ok"] is None:
                    status += (f" <span class='fix'>({m['rows']:,} rows: noise "
                               f"{m['noise']:.3g} &gt; threshold)</span>")
                rows.append(
                    f"<tr><td>{_e(d.name)}</td><td>{_e(feature)}</td>"
                    f"<td>{kind} vs {against}</td><td>{_e(m['metric'])}</td>"
                    f"<td class='num'>{m['value']:.4f}</td>"
                    f"<td class='num'>{m['threshold']:g}</td>"
                    f"<td><svg width='100' height='10' role='img' aria-label='value relative to "
                    f"threshold'><rect width='100' height='10' fill='#eee'/><rect width="
                    f"'{fill:.1f}' height='10' fill='{_BAR_COLORS[m['ok']]}'/>"
                    f"<line x1='50' x2='50' y1='0' y2='10' stroke='#333'/></svg></td>"
                    f"<td>{status}</td></tr>")
    body = ("<p>No skew or drift comparators were evaluated.</p>" if not rows else
            "<table><thead><tr><th>data</th><th>feature</th><th>comparison</th>"
            "<th>metric</th><th>value</th><th>threshold</th><th>value / threshold "
            "(line = threshold)</th><th></th></tr></thead><tbody>" + "".join(rows)
            + "</tbody></table>")
    return "<section id='skew-drift'><h2>Skew and drift</h2>" + body + "</section>"


def _features(datasets: list[Validated], schema: schema_pb2.Schema, colors: dict) -> str:
    per_dataset = [d.features() for d in datasets]
    legend = "".join(f"<span class='key'><i style='background:{colors[d.name]}'></i>"
                     f"{_e(d.name)}</span>" for d in datasets)
    cards = []
    for feature in schema.feature:
        stats = [(d, features.get(feature.name)) for d, features in
                 zip(datasets, per_dataset, strict=True)]
        stats = [(d, s) for d, s in stats if s is not None]
        if not stats:
            continue
        required = feature.presence.min_fraction >= 1.0
        missing = "".join(
            f"<tr><td>{_e(d.name)}</td><td class='num'>{_missing_rate(d, s):.2%}</td>"
            f"{_moments(s)}</tr>" for d, s in stats)
        chart = (_category_chart(stats, colors) if stats[0][1].HasField("string_stats")
                 else _histogram_chart(stats, colors))
        cards.append(
            f"<div class='card' id='feature-{_e(feature.name)}'><h3>{_e(feature.name)} "
            f"<small>{schema_pb2.FeatureType.Name(feature.type)}, "
            f"{'required' if required else 'optional'}</small></h3>{chart}"
            f"<table class='small'><thead><tr><th>data</th><th>missing</th>"
            f"{_moment_headers(stats[0][1])}</tr></thead><tbody>{missing}</tbody></table>"
            f"</div>")
    return (f"<section id='features'><h2>Features</h2><p class='legend'>{legend}</p>"
            + "".join(cards) + "</section>")


def _missing_rate(d: Validated, s: statistics_pb2.FeatureNameStatistics) -> float:
    common = s.string_stats.common_stats if s.HasField("string_stats") else s.num_stats.common_stats
    total = d.rows or 1
    return common.num_missing / total


def _moment_headers(s: statistics_pb2.FeatureNameStatistics) -> str:
    names = ("unique",) if s.HasField("string_stats") else ("mean", "std", "min", "median", "max")
    return "".join(f"<th>{n}</th>" for n in names)


def _moments(s: statistics_pb2.FeatureNameStatistics) -> str:
    if s.HasField("string_stats"):
        return f"<td class='num'>{s.string_stats.unique:,}</td>"
    n = s.num_stats
    return "".join(f"<td class='num'>{v:,.4g}</td>"
                   for v in (n.mean, n.std_dev, n.min, n.median, n.max))


def _histogram_chart(stats, colors: dict) -> str:
    """Equal-width histograms of every dataset as step lines on one axis."""
    histograms = []
    for d, s in stats:
        standard = [h for h in s.num_stats.histograms
                    if h.type == statistics_pb2.Histogram.STANDARD]
        if standard and standard[0].buckets:
            histograms.append((d, standard[0].buckets))
    if not histograms:
        return "<p>No values to chart.</p>"
    low = min(b[0].low_value for _, b in histograms)
    high = max(b[-1].high_value for _, b in histograms)
    if low == high:
        return f"<p>Every value is {low:,.6g}.</p>"
    span = (high - low) or 1.0
    densities = []
    for d, buckets in histograms:
        total = sum(b.sample_count for b in buckets) or 1.0
        densities.append((d, [(b.low_value, b.high_value,
                               b.sample_count / total / max(b.high_value - b.low_value, span / 1e6))
                              for b in buckets]))
    peak = max(v for _, ds in densities for _, _, v in ds) or 1.0

    def x(value):
        return 5 + (value - low) / span * (_CHART_WIDTH - 10)

    def y(density):
        return _CHART_HEIGHT - 20 - density / peak * (_CHART_HEIGHT - 30)

    lines = []
    for d, ds in densities:
        points = [f"{x(ds[0][0]):.1f},{y(0):.1f}"]
        for lo, hi, v in ds:
            points += [f"{x(lo):.1f},{y(v):.1f}", f"{x(hi):.1f},{y(v):.1f}"]
        points.append(f"{x(ds[-1][1]):.1f},{y(0):.1f}")
        lines.append(f"<polyline fill='none' stroke='{colors[d.name]}' stroke-width='2' "
                     f"points='{' '.join(points)}'/>")
    axis = (f"<line x1='5' x2='{_CHART_WIDTH - 5}' y1='{y(0):.1f}' y2='{y(0):.1f}' "
            f"stroke='#999'/><text x='5' y='{_CHART_HEIGHT - 4}'>{low:,.4g}</text>"
            f"<text x='{_CHART_WIDTH - 5}' y='{_CHART_HEIGHT - 4}' text-anchor='end'>"
            f"{high:,.4g}</text>")
    return (f"<svg class='chart' width='{_CHART_WIDTH}' height='{_CHART_HEIGHT}' role='img' "
            f"aria-label='histogram'>{axis}{''.join(lines)}</svg>")


def _shares(s: statistics_pb2.FeatureNameStatistics) -> dict[str, float]:
    strings = s.string_stats
    total = strings.common_stats.num_non_missing or 1
    counts = {b.label: b.sample_count for b in strings.rank_histogram.buckets}
    counts.update({v.value: v.frequency for v in strings.top_values})
    return {value: count / total for value, count in counts.items()}


def _category_chart(stats, colors: dict) -> str:
    """The most common values of the first dataset, each dataset's share as a bar."""
    shares = [(d, _shares(s)) for d, s in stats]
    values = sorted(shares[0][1], key=shares[0][1].get, reverse=True)[:_TOP_VALUES]
    bar_height, label_width = 10, 110
    row_height = bar_height * len(shares) + 6
    height = row_height * len(values) + 4
    peak = max((share.get(v, 0.0) for _, share in shares for v in values), default=1.0) or 1.0
    items = []
    for i, value in enumerate(values):
        top = 2 + i * row_height
        items.append(f"<text x='{label_width - 6}' y='{top + row_height / 2 + 3:.1f}' "
                     f"text-anchor='end'>{_e(value[:16])}</text>")
        for j, (d, share) in enumerate(shares):
            fraction = share.get(value, 0.0)
            width = fraction / peak * (_CHART_WIDTH - label_width - 60)
            items.append(f"<rect x='{label_width}' y='{top + j * bar_height}' "
                         f"width='{width:.1f}' height='{bar_height - 1}' "
                         f"fill='{colors[d.name]}'><title>{_e(d.name)}: {fraction:.1%}"
                         f"</title></rect>")
            items.append(f"<text x='{label_width + width + 4:.1f}' "
                         f"y='{top + j * bar_height + bar_height - 1}' class='tiny'>"
                         f"{fraction:.1%}</text>")
    return (f"<svg class='chart' width='{_CHART_WIDTH}' height='{height}' role='img' "
            f"aria-label='top values'>{''.join(items)}</svg>")


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;
color:#1f2328;margin:0 auto;max-width:1180px;padding:0 24px 48px;background:#fff}
header{border-bottom:1px solid #d0d7de;margin-bottom:8px}
h1{font-size:24px;margin:20px 0 4px}h2{font-size:19px;margin:28px 0 8px}
h3{font-size:15px;margin:14px 0 6px}h3 small{font-weight:normal;color:#57606a}
table{border-collapse:collapse;margin:6px 0}th,td{padding:3px 10px;border-bottom:1px solid
#eaeef2;text-align:left;vertical-align:middle}th{background:#f6f8fa;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}table.small{font-size:12px}
.ok{color:#1a7f37;font-weight:600}.bad{color:#cf222e;font-weight:600}
.unsure{color:#6e7781;font-weight:600}
ul.findings{padding-left:18px}ul.findings li{margin:6px 0}.fix{color:#57606a}
.tag{display:inline-block;font-size:11px;padding:0 6px;border-radius:8px;color:#fff;
background:#6e7781}.tag.skew{background:#cf222e}.tag.drift{background:#9a6700}
.tag.schema{background:#0969da}
#features{display:flex;flex-wrap:wrap;gap:12px}#features h2,#features .legend{flex-basis:100%}
.card{border:1px solid #d0d7de;border-radius:6px;padding:6px 12px;flex:1 1 500px}
.key{margin-right:14px}.key i{display:inline-block;width:12px;height:12px;margin-right:4px;
vertical-align:-1px;border-radius:2px}svg text{font-size:11px;fill:#57606a}
svg text.tiny{font-size:9px}tr.failed td{background:#ffebe9}
"""
