"""The Evidently drift report in the docs (``docs/drift-report.png``), made again from real shots.

A LightGBM champion is fitted on 30,000 real shots of the 2018-19 season, and its training
sample (5,000 rows, what ``parivision train`` logs with a version) is the reference.  The recent
window is the next 2,000 real shots of the season (player form from every shot before them),
taken 8 ft further out and with four in ten of the made ones missed
(:func:`models.drift_report.shifted_shots`), scored by that champion.
:func:`models.drift_report.evaluate` runs the same Evidently presets as ``parivision drift``;
the report is saved (as the retrain loop saves it) and rendered in Debian's headless Chromium.
Prints the summary as one JSON line.

    .venv/bin/python bench/drift_report_picture.py                  # docs/drift-report.png
    .venv/bin/python bench/drift_report_picture.py --no-shift --out /tmp/calm.png
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from drift_check import window

from models.drift_report import DRIFT_SHARE, evaluate, save_report

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def report(shift: bool, folder: Path):
    """Fit the champion, build reference and recent window, run and save the report."""
    recent, reference = window(shift)  # the drift benchmark's window, shots 208,000-210,000
    summary, html = evaluate(recent, reference, drift_share=DRIFT_SHARE, champion_version="1")
    save_report(folder, summary, html)
    return summary


def screenshot(html: Path, out: Path, width: int = 1400, height: int = 2390) -> None:
    """The top of the report (header, dataset drift, the most drifted features) as a PNG."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    with tempfile.TemporaryDirectory(prefix="parivision-chromium-") as profile:
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--no-first-run",
            f"--user-data-dir={profile}",
        ):
            options.add_argument(arg)
        driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
        try:
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
            driver.get(html.as_uri())
            # The report draws itself with JavaScript: wait for its drift table's rows.
            WebDriverWait(driver, 60).until(
                lambda d: d.execute_script("return document.querySelectorAll('tr').length > 5")
            )
            time.sleep(1.0)  # plotly's small histograms finish after the table
            out.parent.mkdir(parents=True, exist_ok=True)
            if not driver.save_screenshot(str(out)):
                raise RuntimeError(f"Chromium saved no screenshot at {out}")
        finally:
            driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "drift-report.png")
    parser.add_argument("--reports", type=Path, help="keep the HTML reports in this folder")
    parser.add_argument("--no-shift", action="store_true", help="the real shots, unshifted")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="parivision-reports-") as folder:
        reports = args.reports or Path(folder)
        summary = report(not args.no_shift, reports)
        screenshot(Path(summary.report), args.out)
    print(f"{args.out}: {summary.drift_share:.2f} of the features drifted: {summary.drifted}")
    keys = ("drift_share", "dataset_drift", "drifted", "quality", "reference_description")
    print(
        json.dumps(
            {k: v for k, v in summary.as_dict().items() if k in keys} | {"png": str(args.out)}
        )
    )


if __name__ == "__main__":
    main()
