"""The interactive HTML worked solution in a real browser: Debian's chromium driven by selenium
through the system chromedriver (/usr/bin/chromedriver, package chromium-driver; no browser or
driver is downloaded: the Service path is given).  The page is opened from disk; answers are
typed into the first boxes — a right one with the keyboard alone (Tab, type, Enter), a
rounding-only one and a factor-2 one with the Check button — and the verdicts the page sets are
compared with `derive check`'s on the same numbers.  No KaTeX error, no console error, no
horizontal scrolling at a phone's width (390 px).

Marked `browser` (not in the fast tier).  Without chromium, chromedriver or selenium the tests are
skipped, except under CI (CI=true), where .ci/run installs them and a missing one is a failure.

`python tests/test_html_browser.py PAGE.html OUT.png [WIDTH]` takes a screenshot of a page, with
the first three answers typed in and their steps opened (the README's picture).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"

pytestmark = pytest.mark.browser

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:          # pragma: no cover - selenium is in the test extra
    webdriver = None


def _missing() -> str | None:
    if webdriver is None:
        return "selenium is not installed (pip install '.[test]')"
    if not (Path(CHROMIUM).is_file() and Path(DRIVER).is_file()):
        return "chromium and chromium-driver are not installed (.ci/run installs them)"
    return None


def browser(width: int = 1000, height: int = 1400):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--hide-scrollbars", f"--window-size={width},{height}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=DRIVER), options=opts)


@pytest.fixture(scope="module")
def driver():
    why = _missing()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    d = browser()
    yield d
    d.quit()


@pytest.fixture(scope="module")
def page_file():
    import derive
    from derive import htmlpage as hp
    d = Path(tempfile.mkdtemp(prefix="derive-html-"))
    path = d / "two-two-two.en.html"
    path.write_text(hp.page(derive.load("two-two-two"), lang="en"), encoding="utf-8")
    yield path
    shutil.rmtree(d, ignore_errors=True)


def open_page(driver, path: Path):
    driver.get(path.as_uri())
    WebDriverWait(driver, 30).until(lambda d: d.execute_script(
        "return document.querySelectorAll('.tex').length > 0 && "
        "document.querySelectorAll('.tex .katex').length === document.querySelectorAll('.tex').length"))


def check_verdicts(items):
    """derive check's (verdict, diagnosis) of (quantity, number) pairs, one claim at a time."""
    from derive.check import Checker
    from derive.claims import load_claims
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "c.toml"
        path.write_text('spec = "two-two-two"\n' + "".join(f'[[claim]]\nof = "{q}"\nvalue = "{v}"\n' for q, v in items))
        cf = load_claims(path)
    checker = Checker(cf.problem, 10, "en")
    return [(r.verdict, r.diagnosis) for c in cf.claims for r in checker.speaking("en").check([c])]


def answers_for_the_first_boxes():
    """(quantity, number, expected verdict, expected diagnosis) for the first three boxes: the
    truth to 4 digits, one unit off in the 6th digit, twice the truth to 4 digits."""
    import derive
    p = derive.load("two-two-two")
    first, second, third = [d.name for d in p.spec.forward][:3]
    (a,), (b,), (c,) = (p.eval(n, digits=30)[0].value.values for n in (first, second, third))
    right = a.text[:6] if not a.exact else a.text
    unit = Fraction(10) ** -6
    off = Fraction(b.text) if b.exact else Fraction(str(round(float(Fraction(b.text)), 6)))
    rounding = f"{float(off + unit):.6f}"
    factor2 = f"{float(2 * Fraction(c.text)):.4g}"
    items = [(first, right), (second, rounding), (third, factor2)]
    expected = check_verdicts(items)
    assert expected == [("correct", None), ("rounding", None), ("wrong", "factor-2")], (items, expected)
    return items


def test_answers_are_judged_as_derive_check_judges_them(driver, page_file):
    open_page(driver, page_file)
    items = answers_for_the_first_boxes()
    boxes = driver.find_elements(By.CSS_SELECTOR, ".answer")
    assert [b.find_element(By.TAG_NAME, "input").get_attribute("data-quantity") for b in boxes[:3]] == \
        [q for q, _ in items]
    # keyboard only: Tab from the top of the page to the first box, type, Enter
    driver.find_element(By.TAG_NAME, "body").click()
    actions = ActionChains(driver)
    for _ in range(10):
        actions.send_keys(Keys.TAB).perform()
        if driver.execute_script("return document.activeElement.getAttribute('data-quantity')") == items[0][0]:
            break
    else:
        raise AssertionError("Tab never reached the first answer box")
    ActionChains(driver).send_keys(items[0][1]).send_keys(Keys.ENTER).perform()
    assert boxes[0].get_attribute("data-verdict") == "correct"
    assert boxes[0].get_attribute("data-diagnosis") is None
    assert boxes[0].find_element(By.TAG_NAME, "output").text == "Correct."
    # Tab on to the Check button and the step's "Show the working"; Enter opens it
    ActionChains(driver).send_keys(Keys.TAB).send_keys(Keys.TAB).send_keys(Keys.ENTER).perform()
    assert driver.execute_script("return document.querySelector('details.working').open") is True
    # the Check button
    for box, (_q, number) in zip(boxes[1:3], items[1:3]):
        box.find_element(By.TAG_NAME, "input").send_keys(number)
        box.find_element(By.CSS_SELECTOR, "button.check").click()
    assert boxes[1].get_attribute("data-verdict") == "rounding"
    assert boxes[2].get_attribute("data-verdict") == "wrong"
    assert boxes[2].get_attribute("data-diagnosis") == "factor-2"
    assert "factor of 2" in boxes[2].find_element(By.TAG_NAME, "output").text
    # a word is not a number
    box = boxes[3]
    box.find_element(By.TAG_NAME, "input").send_keys("abc", Keys.ENTER)
    assert box.get_attribute("data-verdict") == "invalid"


def test_no_katex_error_and_no_console_error(driver, page_file):
    open_page(driver, page_file)
    n = driver.execute_script("return document.querySelectorAll('.katex').length")
    assert n > 100
    assert driver.execute_script("return document.querySelectorAll('.katex-error').length") == 0
    assert driver.execute_script("return document.querySelectorAll('svg.derive-network line').length") > 10
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert not errors, errors


def test_phone_width_has_no_horizontal_page_scroll(page_file):
    why = _missing()
    if why:
        pytest.skip(why)
    d = browser()
    try:
        # a phone's viewport (headless chromium's window is at least 500 px wide)
        d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                          {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
        open_page(d, page_file)
        d.find_element(By.CSS_SELECTOR, "button.toggle-all").click()      # every step open, wide math too
        width, scroll = d.execute_script("return [window.innerWidth, document.documentElement.scrollWidth]")
        assert width == 390 and scroll <= width, (width, scroll)
        # the wide formulas scroll inside their own box
        assert d.execute_script("return [...document.querySelectorAll('.d')].some(e => e.scrollWidth > e.clientWidth)")
        # the diagram too (it keeps a readable size and scrolls in its figure)
        assert d.execute_script("return document.querySelector('figure').getBoundingClientRect().right") <= width
    finally:
        d.quit()


def screenshot(page: Path, out: Path, width: int = 760) -> None:
    """A screenshot of a page with the first three answers typed in and their steps opened."""
    d = browser()
    try:
        d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                          {"width": width, "height": 1000, "deviceScaleFactor": 1, "mobile": width < 500})
        open_page(d, page)
        items = answers_for_the_first_boxes()
        for box, (_q, number) in zip(d.find_elements(By.CSS_SELECTOR, ".answer"), items):
            box.find_element(By.TAG_NAME, "input").send_keys(number, Keys.ENTER)
        for det in d.find_elements(By.CSS_SELECTOR, "details.working")[:3]:
            d.execute_script("arguments[0].open = true", det)
        d.execute_script("const h = document.querySelectorAll('h2')[2]; window.scrollTo(0, h.offsetTop - 8)")
        d.save_screenshot(str(out))
    finally:
        d.quit()


if __name__ == "__main__":
    screenshot(Path(sys.argv[1]).resolve(), Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 760)
