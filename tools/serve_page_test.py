#!/usr/bin/python3
"""Drives the page of `stylenet serve` in headless Chromium (Debian's chromium + chromium-driver +
python3-selenium), as a person would: load /, pick a photo in the file input, wait for the
prediction, read what the page shows.  Run by tests/serve/test_serve.c.

  serve_page_test.py --case URL PHOTO GROUP=CLASS[,GROUP=CLASS] [--case ...] --screenshot OUT.png

For each case: the best class shown in each named group (.group[data-group=GROUP] .best .label)
must equal CLASS; the last case's page is saved to OUT.png.  Prints one line per check, "ok ..."
or "FAIL ...", and exits 0 only if every check passed.  Any missing piece (selenium, chromium,
chromedriver) is a failure with a message saying what to install, never a skip.
"""
import argparse
import os
import shutil
import sys
import time

CHROMEDRIVER = "/usr/bin/chromedriver"


def fail(msg):
    print("FAIL " + msg, flush=True)
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", nargs=3, action="append", metavar=("URL", "PHOTO", "EXPECT"), required=True)
    ap.add_argument("--screenshot", required=True)
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError as e:
        fail("python3-selenium is missing (%s): apt-get install python3-selenium chromium chromium-driver" % e)
    browser = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(CHROMEDRIVER) or not os.path.exists(browser):
        fail("chromium or %s is missing: apt-get install chromium chromium-driver" % CHROMEDRIVER)
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1000,700", "--hide-scrollbars", "--force-device-scale-factor=1"):
        opts.add_argument(flag)
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    except Exception as e:  # noqa: BLE001 - any start failure is a test failure with its reason
        fail("cannot start headless chromium: %s" % str(e).splitlines()[0])
    bad = 0
    try:
        for url, photo, expect in a.case:
            want = dict(kv.split("=", 1) for kv in expect.split(","))
            t0 = time.time()
            driver.get(url)
            WebDriverWait(driver, a.timeout).until(
                lambda d: "loading" not in d.find_element(By.ID, "model").text)
            header = driver.find_element(By.ID, "model").text
            driver.find_element(By.ID, "file").send_keys(os.path.abspath(photo))
            WebDriverWait(driver, a.timeout).until(
                lambda d: d.find_element(By.ID, "result").get_attribute("data-state") in ("done", "error"))
            res = driver.find_element(By.ID, "result")
            if res.get_attribute("data-state") != "done":
                print("FAIL %s %s: the page shows an error: %s" % (url, photo, res.text), flush=True)
                bad += 1
                continue
            seen = {}
            for group in want:
                el = driver.find_elements(By.CSS_SELECTOR, '.group[data-group="%s"] .best .label' % group)
                seen[group] = el[0].text if el else None
            bars = len(driver.find_elements(By.CSS_SELECTOR, ".row .fill"))
            meta = driver.find_element(By.CSS_SELECTOR, "#result .meta").text
            preview = driver.execute_script(
                "const i = document.getElementById('preview'); return i.complete && i.naturalWidth;")
            ok = seen == want and bars > 0 and bool(preview)
            print("%s page %s with %s: shows %s (expected %s), %d bars, preview %s px wide, '%s', header '%s', "
                  "%.1f s" % ("ok" if ok else "FAIL", url, os.path.basename(photo), seen, want, bars, preview,
                              meta, header, time.time() - t0), flush=True)
            bad += not ok
        driver.save_screenshot(a.screenshot)
        print("ok screenshot %s (%d bytes)" % (a.screenshot, os.path.getsize(a.screenshot)), flush=True)
    except Exception as e:  # noqa: BLE001
        print("FAIL %s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else ""), flush=True)
        bad += 1
    finally:
        driver.quit()
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
