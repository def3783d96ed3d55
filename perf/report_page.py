"""Size, build time and headless-Chromium load time of ``report.html``: a real run's folder (if given), the
full TOFU grid's shape with generated values (11 methods + gold on forget01/05/10, 40/200/400 forget rows) and a
stress grid (4,000 rows per cell). Load = Chromium starting, parsing the page, running its script and opening one
drill-down (dump of the DOM), the median of ``--rounds``; Chromium's own start is measured on an empty page and
printed beside it.

Run: python perf/report_page.py [RUN_DIR] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from unlearn.html_report import render, synthetic_results
from unlearn.report import read_results


def load_s(page: Path, fragment: str, rounds: int, profile: Path) -> float:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
                        "--dump-dom", page.resolve().as_uri() + fragment], capture_output=True, check=True, timeout=300)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run_dir", nargs="?")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    empty = tmp / "empty.html"
    empty.write_text("<!doctype html><title>empty</title>")
    cases = []
    if args.run_dir:
        doc = read_results(args.run_dir)
        first = doc["cells"][0]
        cases.append((f"run {args.run_dir}", doc, f"#open={first['benchmark']}-{first['split']}-{first['method']}"))
    cases.append(("full TOFU grid shape (11 methods + gold, 40/200/400 rows)", synthetic_results(),
                  "#open=tofu-forget10-method_10"))
    cases.append(("stress: 4,000 rows per cell", synthetic_results(splits=(("forget01", 4000), ("forget05", 4000),
                                                                           ("forget10", 4000))),
                  "#open=tofu-forget10-method_10"))
    out = {"chromium_start_s": round(load_s(empty, "", args.rounds, tmp / "p"), 2)}
    for name, doc, fragment in cases:
        t = time.perf_counter()
        page_text = render([(name, doc)])
        build = time.perf_counter() - t
        page = tmp / "report.html"
        page.write_text(page_text)
        rows = sum(len(next(iter(c["per_question"].get("logs", {}).values()), {}).get("generated_text", {}) or {})
                   for c in doc["cells"])
        out[name] = {"cells": len(doc["cells"]), "forget_rows": rows, "bytes": page.stat().st_size,
                     "build_s": round(build, 2), "load_s": round(load_s(page, fragment, args.rounds, tmp / "p"), 2)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
