"""The page of ``medtext explain``: one self-contained HTML file (inline CSS, a small inline script).

Nothing is loaded from the network, and the page reads without JavaScript too.
"""

from __future__ import annotations

import html
import json

CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d2329}
header{background:#1d3557;color:#fff;padding:14px 24px}header h1{font-size:19px;margin:0 0 4px}
header p{margin:0;font-size:13px;opacity:.85}main{max-width:1100px;margin:0 auto;padding:16px}
.card{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.12);margin:0 0 16px;padding:14px 18px}
.top{display:flex;flex-wrap:wrap;gap:8px 16px;align-items:center;margin-bottom:8px;font-size:14px}
.row{font-weight:600;color:#555}.chip{background:#e8eef7;border-radius:12px;padding:2px 10px}
.chip.pred{background:#1d3557;color:#fff}.ok{color:#1a7f37;font-weight:600}.bad{color:#c62828;font-weight:600}
select{font:inherit;font-size:13px;padding:2px 4px}.text{margin:0;line-height:1.9}
.w{border-radius:3px;padding:1px 0}.note{font-size:12px;color:#666;margin-top:6px}
.legend span{padding:1px 6px;border-radius:3px;margin-left:4px}
"""
SCRIPT = """
const DATA = JSON.parse(document.getElementById('explain-data').textContent);
function shade(w, top) {
  if (w === null || top === 0) return '';
  const a = Math.min(1, Math.abs(w) / top) * 0.85;
  return w >= 0 ? `rgba(255,140,0,${a.toFixed(3)})` : `rgba(30,120,255,${a.toFixed(3)})`;
}
function paint(card, label) {
  const weights = DATA.cards[card].map(w => w === null ? null : w[label]);
  const top = Math.max(0, ...weights.filter(w => w !== null).map(Math.abs));
  document.querySelectorAll(`#card-${card} .w`).forEach(span => {
    const w = weights[+span.dataset.w];
    span.style.background = shade(w, top);
    span.title = w === null ? '' : `${DATA.labels[label]}: ${w.toPrecision(3)}`;
  });
}
document.querySelectorAll('select[data-card]').forEach(s => s.addEventListener('change', () => paint(+s.dataset.card, +s.value)));
"""


def shade(weight: float | None, top: float) -> str:
    """The background of a word (as the script computes it): positive weights orange, negative blue,
    the shade the weight over the largest absolute weight of that abstract and label."""
    if weight is None or top == 0:
        return ""
    alpha = min(1.0, abs(weight) / top) * 0.85
    return f"rgba(255,140,0,{alpha:.3f})" if weight >= 0 else f"rgba(30,120,255,{alpha:.3f})"


def highlighted_text(text: str, words: list, weights: list, label: int) -> str:
    """The escaped text; each seen word a ``span.w`` shaded by its weight for ``label``."""
    column = [None if w is None else w[label] for w in weights]
    top = max((abs(w) for w in column if w is not None), default=0.0)
    parts, cursor = [], 0
    for j, (start, end) in enumerate(words):
        if column[j] is None or start < cursor:
            continue  # unseen (cut by max_length): stays plain text
        parts.append(html.escape(text[cursor:start]))
        style = shade(column[j], top)
        parts.append(f'<span class="w" data-w="{j}" style="background:{style}" '
                     f'title="{column[j]:.3g}">{html.escape(text[start:end])}</span>')
        cursor = end
    parts.append(html.escape(text[cursor:]))
    return "".join(parts)


def card(k: int, c: dict, label_names: list[str], multi_label: bool) -> str:
    """One abstract: its row id, predicted label(s) with probabilities, the true label when known, and
    the text shaded for the label chosen in the card's selector (default: the predicted one). The
    server-rendered shading is the default label's; the script re-shades the card when it changes."""
    probabilities, predictions = c["probabilities"], c["predictions"]
    if multi_label:
        predicted = [j for j, p in enumerate(predictions) if p]
        default = predicted[0] if predicted else max(range(len(probabilities)), key=probabilities.__getitem__)
        true = None if c["truth"] is None else [j for j, t in enumerate(c["truth"]) if t]
    else:
        predicted, default = [int(predictions)], int(predictions)
        true = None if c["truth"] is None else [int(c["truth"])]
    chips = "".join(f'<span class="chip pred">{html.escape(label_names[j])} {probabilities[j]:.2f}</span>'
                    for j in predicted) or '<span class="chip">no label above its threshold</span>'
    top = [f'<span class="row">row {html.escape(str(c["row_id"]))}</span>', f"<span>predicted {chips}</span>"]
    if true is not None:
        mark = '<span class="ok">&#10003;</span>' if sorted(true) == sorted(predicted) else '<span class="bad">&#10007;</span>'
        names = ", ".join(html.escape(label_names[j]) for j in true) or "none"
        top.append(f"<span>true <b>{names}</b> {mark}</span>")
    options = "".join(f'<option value="{j}"{" selected" if j == default else ""}>{html.escape(name)} '
                      f"({probabilities[j]:.2f})</option>" for j, name in enumerate(label_names))
    top.append(f'<label>words weighted for <select data-card="{k}">{options}</select></label>')
    unseen = sum(w is None for w in c["weights"])
    note = (f'<div class="note">{unseen} of {len(c["weights"])} words came after the model\'s token limit: '
            "not seen, not highlighted.</div>" if unseen else "")
    return (f'<section class="card" id="card-{k}"><div class="top">{"".join(top)}</div>'
            f'<p class="text">{highlighted_text(c["text"], c["words"], c["weights"], default)}</p>{note}</section>')


def render(cards: list[dict], label_names: list[str], multi_label: bool, method: str, meta: dict) -> str:
    """The page: ``cards`` as :func:`medtext.commands.explain.explain_texts` returns them, plus ``row_id``, ``text``
    and ``truth`` (class id, a 0/1 list for multi-label, or ``None``). Per-label word weights are
    embedded as JSON (``<script type="application/json" id="explain-data">``) for the script."""
    data = {"labels": list(label_names),
            "cards": [[None if w is None else [round(x, 6) for x in w] for w in c["weights"]] for c in cards]}
    payload = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")
    kind = "multi-label" if multi_label else "single-label"
    calibrated = "calibrated probabilities" if not multi_label else "calibrated probabilities, decided at the tuned thresholds"
    info = (f"{html.escape(meta['checkpoint'])} &middot; {html.escape(meta['file'])} &middot; {len(cards)} abstracts "
            f"&middot; {kind}, {calibrated} &middot; weights: {html.escape(method)}, a word's = sum of its word pieces "
            f"&middot; max_length {meta['max_length']}")
    legend = ('<span class="legend">&middot; shading: <span style="background:rgba(255,140,0,.7)">for the label</span>'
              '<span style="background:rgba(30,120,255,.6)">against it</span></span>')
    body = "\n".join(card(k, c, label_names, multi_label) for k, c in enumerate(cards))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>medtext explain: {html.escape(meta['checkpoint'])}</title><style>{CSS}</style></head>\n"
            f"<body><header><h1>Why the model predicts what it does</h1><p>{info} {legend}</p></header>\n"
            f"<main>\n{body}\n</main>\n<script type=\"application/json\" id=\"explain-data\">{payload}</script>\n"
            f"<script>{SCRIPT}</script>\n</body></html>\n")
