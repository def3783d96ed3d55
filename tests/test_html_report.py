"""``report.html`` and ``unlearn report``: built from results documents (no model), then loaded in headless
Chromium from a file URL as a user would open it: tables and their row counts, a drill-down opened, no console
error, no request leaving the file, a screenshot taken."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from unlearn.cli import main
from unlearn.html_report import JS, PAGE_ROWS, bootstrap_diff, render, synthetic_results, write_report
from unlearn.report import SCHEMA_VERSION

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not found (Debian: apt-get install "
                                                             "chromium; .ci/run installs it)")


def small_doc(seed: int = 0, **kw) -> dict:
    return synthetic_results(methods=3, splits=(("forget01", 12), ("forget05", 250)), seed=seed, **kw)


def browse(tmp_path, page, fragment: str = "", screenshot: bool = False) -> tuple[str, list[str]]:
    """(the DOM after the page's scripts ran, console lines). Name resolution is mapped to nowhere, so a request
    that tried to leave the file would fail and be logged."""
    url = page.resolve().as_uri() + fragment
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
              f"--user-data-dir={tmp_path / 'profile'}", "--host-resolver-rules=MAP * ~NOTFOUND",
              "--virtual-time-budget=5000"]
    res = subprocess.run(common + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    console = [line for line in res.stderr.splitlines() if ":CONSOLE" in line]
    if screenshot:
        shot = subprocess.run(common + [f"--screenshot={tmp_path / 'shot.png'}", "--window-size=1280,2000", url],
                              capture_output=True, text=True, timeout=120)
        assert shot.returncode == 0, shot.stderr[-2000:]
    return res.stdout, console


def table_rows(dom: str, group: str) -> list[str]:
    table = re.search(rf'<table class="summary sortable" data-group="{group}">(.*?)</table>', dom, re.S).group(1)
    return re.findall(r"<tr[ >].*?</tr>", table.split("<tbody>")[1], re.S)


def drill_rows(dom: str, cell: str) -> list[list[str]]:
    box = re.search(rf'<details class="drill" id="drill-{cell}"[^>]*>(.*?)</details>', dom, re.S).group(1)
    body = box.split("<tbody>")[1].split("</tbody>")[0] if "<tbody>" in box else ""
    return [re.findall(r"<td>(.*?)</td>", r, re.S) for r in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


@needs_chromium
def test_page_as_a_user_sees_it(tmp_path):
    doc = small_doc()
    nasty = doc["cells"][1]  # an answer that tries to close the data block and run a script
    nasty["per_question"]["logs"]["forget"]["generated_text"]["0"][1] = "</script><img src=x onerror=alert(1)>"
    nasty["summary"]["retain_performance"] = float("nan")
    page = write_report(doc, tmp_path / "report.html", title="small")
    text = page.read_text()
    assert not re.search(r'(src|href)=["\']?(https?:)?//', text)  # nothing to fetch
    dom, console = browse(tmp_path, page, "#open=tofu-forget05-method_01", screenshot=True)
    assert console == []
    assert (tmp_path / "shot.png").stat().st_size > 10_000
    for group in ("tofu-forget01", "tofu-forget05"):
        rows = table_rows(dom, group)
        assert len(rows) == 4 and 'class="gold"' in rows[-1] and "gold</span>" in rows[-1]
    assert dom.count('<details class="drill"') == 8
    opened = drill_rows(dom, "tofu-forget05-method_01")
    assert len(opened) == min(PAGE_ROWS, 250) and len(opened[0]) == 10
    rouge = [float(r[6]) for r in opened]
    assert rouge == sorted(rouge, reverse=True)  # what still leaks first
    assert opened[0][1].startswith("What is fact ") and opened[0][3].startswith("target says")
    assert "show 200 more" in dom and "200 of 250 rows shown" in dom
    assert drill_rows(dom, "tofu-forget01-method_00") == []  # closed: not rendered
    assert "onerror" not in re.sub(r"&lt;img src=x onerror=alert\(1\)&gt;", "", dom.split('id="drill-data"')[0])


def hostile(field: str) -> str:
    """Markup in a text field: an element with a script, an attribute break-out with an event handler, a close of
    the JSON block, and "<!--<script>", which in a script block keeps it open past its own end tag."""
    return f'{field}<script>alert(1)</script>"><img src=x onerror=alert(1)></script><!--<script>'


class PageParts(HTMLParser):
    """Every start tag with its attributes (values unescaped), the text outside scripts (unescaped) and each script
    block's raw text, as a browser's tokenizer splits them."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.tags, self.text, self.scripts, self._script = [], [], [], False
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self.scripts.append("")
            self._script = True

    def handle_endtag(self, tag):
        self._script = self._script and tag != "script"

    def handle_data(self, data):
        if self._script:
            self.scripts[-1] += data
        else:
            self.text.append(data)


def _strings(x) -> set[str]:
    if isinstance(x, str):
        return {x}
    if isinstance(x, dict):
        x = list(x.values())
    return set().union(*map(_strings, x)) if isinstance(x, list) else set()


def test_text_from_results_is_escaped_everywhere_on_the_page():
    """Hostile text in every field that reaches the page (title, run identity, a stopped cell, method and split
    names, TOFU questions, references and answers, another benchmark's per-question texts) adds no element and no
    attribute: the page has its own two scripts and nothing else, each text shows as written, and the drill-down's
    JSON block ends at its own end tag and parses back to the same strings."""
    doc = synthetic_results(methods=1, splits=(("forget01", 2),))
    method, gold = doc["cells"]
    split = hostile("split")
    for c in (method, gold):
        c["split"] = split
    method["method"] = hostile("method")
    method["per_question"]["logs"]["forget"]["generated_text"]["0"] = [
        f"Question: {hostile('question')}\nAnswer:", hostile("answer"), hostile("reference")]
    gold["per_question"]["logs"]["forget"]["generated_text"]["0"][1] = hostile("gold answer")
    method["per_question"]["target_forget"]["generated_text"][0] = hostile("target answer")
    wmdp_rows = {"question": [hostile("wmdp question")], "pred": [0], "answer": [0]}
    doc["cells"].append({"benchmark": "wmdp", "split": "synthetic", "method": hostile("wmdp method"),
                         "summary": {"forget_efficacy": 0.5}, "metrics": {}, "per_question": {"hazard_a": wmdp_rows}})
    stopped = {"benchmark": "tofu", "split": hostile("failed split"), "method": hostile("failed method"),
               "error": hostile("error")}
    doc["run"].update(model=hostile("model"), protocol=hostile("protocol"), data={"tofu": [hostile("data")]},
                      failed=[stopped])
    page = PageParts(render([(hostile("title"), doc)]))

    scripts = [a for t, a in page.tags if t == "script"]
    assert scripts == [{"type": "application/json", "id": "drill-data"}, {}]  # the page's own two
    assert not [t for t, _ in page.tags if t == "img"]
    assert not [(t, name) for t, a in page.tags for name in a if name.startswith("on")]
    text = "".join(page.text)
    for field in ("title", "model", "protocol", "data", "failed split", "failed method", "error", "split", "method",
                  "wmdp method"):
        assert hostile(field) in text, field
    assert ("tr", {"class": "", "data-method": hostile("method")}) in page.tags  # attribute values too
    data, script = page.scripts
    assert script == f"var PAGE={PAGE_ROWS};{JS}"
    # the tokenizer ends a script block at the first "</script"; "<!--" then "<script" would make it skip that one
    bad = re.search(r"</|<!--|<script", data, re.I)
    assert bad is None, data[max(0, bad.start() - 60): bad.end() + 60]
    strings = _strings(json.loads(data))
    for field in ("question", "answer", "reference", "gold answer", "target answer", "wmdp question"):
        assert hostile(field) in strings, field


@needs_chromium
def test_full_size_grid_stays_usable(tmp_path):
    """11 methods + gold on forget01/05/10 with their real forget-set sizes (40/200/400 rows)."""
    page = write_report(synthetic_results(), tmp_path / "report.html")
    assert page.stat().st_size < 2_000_000
    dom, console = browse(tmp_path, page, "#open=tofu-forget10-method_10")
    assert console == []
    assert dom.count('<details class="drill"') == 36
    assert [len(table_rows(dom, f"tofu-{s}")) for s in ("forget01", "forget05", "forget10")] == [12, 12, 12]
    assert len(drill_rows(dom, "tofu-forget10-method_10")) == PAGE_ROWS


def test_summary_cells_carry_sortable_values_and_undefined_is_blank():
    doc = small_doc()
    doc["cells"][0]["summary"]["mia_auc"] = float("nan")
    text = render([("t", doc)])
    first = re.search(r'<tr class="" data-method="method_00">(.*?)</tr>', text).group(1)
    assert '<td data-v="">--</td>' in first  # NaN: shown as --, sorted last
    assert f'data-v="{doc["cells"][0]["summary"]["forget_efficacy"]}"' in first


def test_report_command_rebuilds_the_page_from_results(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "benchmark_results.json").write_text(json.dumps(small_doc()))
    assert main(["report", str(run)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {run / 'report.html'}"
    assert (run / "report.html").read_text().count('<details class="drill"') == 8


def test_two_runs_compared_cell_by_cell(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d, seed in ((a, 0), (b, 1)):
        d.mkdir()
        (d / "benchmark_results.json").write_text(json.dumps(small_doc(seed)))
    out = tmp_path / "cmp.html"
    assert main(["report", str(a), str(b), "--out", str(out)]) == 0
    text = out.read_text()
    table = text.split('<table class="compare">')[1].split("</table>")[0]
    assert table.count("<tr><td>tofu ") == 8  # every cell of both runs
    assert "95% bootstrap" in text and re.search(r"[+-]\d\.\d{3} \[[+-]\d\.\d{3}, [+-]\d\.\d{3}\]", table)
    assert main(["report", str(a), str(a), "--out", str(out)]) == 0  # a run against itself: no difference
    table = out.read_text().split('<table class="compare">')[1]
    assert table.count("+0.000 [+0.000, +0.000]") == 8


@pytest.mark.parametrize("change,expected", [
    (lambda d: d["run"].update(protocol="another protocol"), "differ in protocol"),
    (lambda d: d["run"].update(model="another-model"), "differ in model"),
    (lambda d: d["run"].update(data={"tofu": ["another folder"]}), "read different data for tofu"),
    (lambda d: d["cells"][0]["data"].update(hash="edited"), "tofu/forget01 read different data"),
    (lambda d: d.update(schema_version=SCHEMA_VERSION - 1), "schema version"),
], ids=["protocol", "model", "data-source", "data-hash", "schema"])
def test_runs_that_measured_different_things_refuse_to_be_compared(change, expected, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
    (a / "benchmark_results.json").write_text(json.dumps(small_doc()))
    other = small_doc(1)
    change(other)
    (b / "benchmark_results.json").write_text(json.dumps(other))
    assert main(["report", str(a), str(b), "--out", str(tmp_path / "cmp.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("unlearn: error: ") and expected in err and "\n" not in err, err
    assert not (tmp_path / "cmp.html").exists()


def test_bootstrap_difference_by_hand():
    d, lo, hi = bootstrap_diff([0.1, 0.2, 0.3], [0.3, 0.4, 0.5])  # paired, a constant shift: no spread
    assert (round(d, 12), round(lo, 12), round(hi, 12)) == (0.2, 0.2, 0.2)
    d, lo, hi = bootstrap_diff([0.0] * 50 + [1.0] * 50, [0.0] * 50 + [1.0] * 50)
    assert d == 0 and lo == hi == 0  # the same values on the same questions
    d, lo, hi = bootstrap_diff([0.0, 1.0] * 20, [0.5] * 10)  # unpaired: lengths differ
    assert d == 0 and lo < 0 < hi


def test_summary_table_shows_intervals_marks_and_merged_seeds():
    """The page's summary values carry what the Markdown table carries: the bootstrap interval, the best (*) and
    not-significantly-different (~) marks, and one row per method over seeds (mean ± sd), sorting by the value."""
    doc = small_doc()
    rows = [c for c in doc["cells"] if c["split"] == "forget01"]
    a, b, gold = (next(c for c in rows if c["method"] == m) for m in ("method_00", "method_01", "retrain"))
    a["summary"]["forget_efficacy"], b["summary"]["forget_efficacy"] = 0.9, 0.5
    a["intervals"] = {"ci": {"forget_efficacy": [0.8, 0.95]}}
    b["intervals"] = {"ci": {"forget_efficacy": [0.3, 0.6]}}
    second = {**b, "seed": 1, "summary": {**b["summary"], "forget_efficacy": 0.7},
              "intervals": {"ci": {"forget_efficacy": [0.55, 0.85]}}}
    doc["cells"].append(second)
    text = render([("t", doc)])
    table = re.search(r'<table class="summary sortable" data-group="tofu-forget01">(.*?)</table>', text).group(1)
    row = lambda m: re.search(rf'<tr class="[a-z]*" data-method="{m}">(.*?)</tr>', table).group(1)  # noqa: E731
    assert '<td data-v="0.9">0.900 [0.80, 0.95]*</td>' in row("method_00")
    merged = row("method_01")  # seeds 0 and 1: mean 0.6, sd 0.141, the union of the intervals, overlapping the best's
    assert re.search(r'<td data-v="0.6[0-9]*">0.600 ± 0.141 \[0.30, 0.85\]~</td>', merged), merged
    assert table.count('data-method="method_01"') == 1
    assert "bootstrap 95% interval" in text
    assert gold["method"] == "retrain" and "*" not in re.sub(r"<[^>]+>", "", row("retrain"))


def crowded_doc() -> dict:
    """Eleven methods and the gold with their real names, the control and iwap a hair apart at the top of the retain
    axis and the gold at its right edge (where labels and ticks used to collide or be cut), with intervals."""
    from unlearn.methods import ORDER

    doc = synthetic_results(methods=len(ORDER) - 1, splits=(("forget01", 12),), seed=3)
    for c, name in zip(doc["cells"], [m for m in ORDER if m != "retrain"] + ["retrain"]):
        c["method"] = name
        s = c["summary"]
        if name in ("finetune", "iwap", "retrain"):
            s["retain_performance"], s["forget_efficacy"] = {"finetune": (1.0, 0.05), "iwap": (1.02, 0.06),
                                                              "retrain": (1.0, 1.0)}[name]
        e, r = s["forget_efficacy"], s["retain_performance"]
        c["intervals"] = {"ci": {"forget_efficacy": [max(0, e - 0.15), min(1, e + 0.1)],
                                 "retain_performance": [r - 0.08, r + 0.05]}}
    return doc


MEASURE = """<script>
var out = [];
document.querySelectorAll('svg.chart').forEach(function (svg, i) {
  var vb = svg.viewBox.baseVal;
  svg.querySelectorAll('text').forEach(function (t) {
    var b = t.getBBox();
    out.push({chart: i, cls: t.getAttribute('class'), text: t.textContent, x0: b.x, y0: b.y, x1: b.x + b.width,
              y1: b.y + b.height, w: vb.width, h: vb.height, rotated: t.hasAttribute('transform')});
  });
  out.push({chart: i, cls: 'bars', n: svg.querySelectorAll('path.err').length});
});
var pre = document.createElement('pre'); pre.id = 'boxes'; pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script>"""


@needs_chromium
def test_chart_labels_are_disjoint_and_inside_and_intervals_are_drawn(tmp_path):
    """The forget-vs-retain chart as Chromium lays it out: every label and tick box inside the chart and clear of
    every other, and each method's two 95% intervals drawn as error bars."""
    from unlearn.html_report import CSS, scatter_svg

    doc = crowded_doc()
    svg = scatter_svg(doc["cells"])
    page = tmp_path / "chart.html"
    page.write_text(f"<!doctype html><html><head><meta charset='utf-8'><style>{CSS}</style></head><body>"
                    f"<div class='charts'>{svg}</div>{MEASURE}</body></html>")
    dom, console = browse(tmp_path, page)
    boxes = json.loads(re.search(r'<pre id="boxes">(.*?)</pre>', dom, re.S).group(1).replace("&quot;", '"'))
    bars = next(b for b in boxes if b["cls"] == "bars")
    assert bars["n"] == 2 * len(doc["cells"])
    texts = [b for b in boxes if b["cls"] in ("lbl", "tick") and not b["rotated"]]
    assert sorted(b["text"] for b in texts if b["cls"] == "lbl") == sorted(
        "retrain (gold)" if c["method"] == "retrain" else c["method"] for c in doc["cells"])
    for b in texts:
        assert 0 <= b["x0"] and b["x1"] <= b["w"] and 0 <= b["y0"] and b["y1"] <= b["h"], b
    for i, a in enumerate(texts):
        for b in texts[i + 1:]:
            apart = a["x1"] <= b["x0"] or b["x1"] <= a["x0"] or a["y1"] <= b["y0"] or b["y1"] <= a["y0"]
            assert apart, (a, b)
