#!/usr/bin/env python3
"""Drives a real headless Chromium (Debian's chromium + chromium-driver, python3-selenium)
against rootless-router's looking glass, for tests/interop/t_91_looking_glass.sh.

What it is: one browser per call, started by chromedriver with background networking,
sync, component updates and DNS off (every host name resolves to nothing: the looking
glass is reached by IP literal), doing what a user does: load a page, type into the
form, press a button; it reads the HTTP status from the browser's own network log and
the rendered DOM. It prints what it saw and exits 1 when an expectation fails.

What it is not: a crawler or a fuzzer; it does not start the router or check anything
outside the pages (the shell test compares what it prints with birdc / ctl).

Usage: lg_browser.py BASE ACTION [ARGS...], BASE like http://127.0.0.1:8042
  sessions SESSION...              `/` lists each SESSION as Established
  route QUERY PREFIX PATH          QUERY typed in the form + Route: PREFIX's best route
                                   shows AS path PATH
  ping ADDR                        ADDR typed + Ping: replies come from ADDR
  hostile                          bad inputs: refused (400/431/404 page), shown as text
  mobile OUTDIR QUERY              390x844 phone: no horizontal overflow on `/`, a route
                                   page and a 400 page; screenshots in OUTDIR
"""

import json
import os
import sys
from urllib.parse import urlsplit

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/lib/chromium/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PHONE = {"width": 390, "height": 844, "pixelRatio": 2}

FAILED = []


def expect(what, ok, detail=""):
    print("%-4s %s%s" % ("ok" if ok else "BAD", what, (": " + detail) if detail else ""))
    if not ok:
        FAILED.append(what)


def browser(phone=False):
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    for a in (
        "--headless=new",
        "--user-data-dir=" + os.path.join(os.environ["HOME"], "profile"),
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-domain-reliability",
        "--disable-breakpad",
        "--disable-client-side-phishing-detection",
        "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
        "--no-pings",
        "--password-store=basic",
        "--disable-dev-shm-usage",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--lang=en-US",
        "--window-size=1280,900",
    ):
        o.add_argument(a)
    if phone:
        o.add_experimental_option("mobileEmulation", {"deviceMetrics": PHONE})
    o.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=o)
    d.set_page_load_timeout(45)
    return d


def statuses(d):
    """HTTP statuses of the documents loaded since the last call (the browser's log)."""
    out = []
    for e in d.get_log("performance"):
        m = json.loads(e["message"])["message"]
        if m.get("method") == "Network.responseReceived" and m["params"].get("type") == "Document":
            out.append(m["params"]["response"]["status"])
    return out


def load(d, url):
    statuses(d)
    d.get(url)
    st = statuses(d)
    return st[-1] if st else None


def submit(d, base, text, button):
    """Loads `/`, types TEXT into the form and presses BUTTON; the answer's status."""
    load(d, base + "/")
    box = d.find_element(By.CSS_SELECTOR, "form input[name=q]")
    box.send_keys(text)
    typed = box.get_attribute("value")
    statuses(d)
    d.find_element(By.XPATH, "//form/button[normalize-space()='%s']" % button).click()
    # The answer's page, not `/` still showing: another path, loaded, with its content.
    WebDriverWait(d, 45).until(
        lambda d: urlsplit(d.current_url).path != "/"
        and d.execute_script("return document.readyState") == "complete"
        and d.find_elements(By.CSS_SELECTOR, "main h2, main p.err")
    )
    st = statuses(d)
    return (st[-1] if st else None), typed


def text_of(d, css):
    return [e.text for e in d.find_elements(By.CSS_SELECTOR, css)]


def no_injection(d, what):
    """No element the page does not make: no script, img, iframe, svg, object; no alert."""
    tags = ("script", "img", "iframe", "svg", "object", "embed")
    bad = {t: len(d.find_elements(By.TAG_NAME, t)) for t in tags}
    try:
        d.switch_to.alert
        alert = True
    except NoAlertPresentException:
        alert = False
    expect(what + ": no injected element, no alert", not any(bad.values()) and not alert,
           "elements %s, alert %s" % (bad, alert))


def do_sessions(d, base, names):
    st = load(d, base + "/")
    expect("GET / status", st == 200, str(st))
    expect("title", d.title == "Sessions · looking glass", d.title)
    buttons = text_of(d, "form button")
    expect("form with q and three buttons",
           len(d.find_elements(By.CSS_SELECTOR, "form input[name=q]")) == 1
           and buttons == ["Route", "Ping", "Traceroute"], str(buttons))
    rows = {}
    for tr in d.find_elements(By.CSS_SELECTOR, "table tr")[1:]:
        cells = [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        print("row:", " | ".join(cells))
        rows[cells[0]] = cells
    for n in names:
        expect("session %s Established" % n, n in rows and rows[n][1] == "Established",
               str(rows.get(n)))


def routes_on_page(d):
    out = []
    for sec in d.find_elements(By.CSS_SELECTOR, "section.route"):
        dts = [e.text for e in sec.find_elements(By.TAG_NAME, "dt")]
        dds = [e.text for e in sec.find_elements(By.TAG_NAME, "dd")]
        out.append(dict(zip(dts, dds)))
    return out


def do_route(d, base, query, prefix, path):
    st, typed = submit(d, base, query, "Route")
    print("typed %r, now at %s (status %s)" % (typed, d.current_url, st))
    expect("route page status", st == 200, str(st))
    h2 = text_of(d, "main h2")
    expect("heading", h2 == ["Routes for " + query], str(h2))
    routes = routes_on_page(d)
    for r in routes:
        print("route:", json.dumps(r))
    best = [r for r in routes if r.get("Prefix") == prefix and r.get("Status") == "best"]
    expect("one best route for " + prefix, len(best) == 1, str(len(best)))
    if best:
        got = best[0].get("AS path")
        expect("AS path", got == path, "%r, expected %r" % (got, path))


def do_ping(d, base, addr):
    st, _ = submit(d, base, addr, "Ping")
    expect("ping page status", st == 200, str(st))
    rows = []
    for tr in d.find_elements(By.CSS_SELECTOR, "table tr")[1:]:
        rows.append([td.text for td in tr.find_elements(By.TAG_NAME, "td")])
        print("row:", " | ".join(rows[-1]))
    tail = text_of(d, "main > p")
    print("tail:", tail)
    replies = [r for r in rows if len(r) == 4 and r[1] == addr and r[3].endswith(" ms")]
    summary = "%d sent, %d received." % (len(rows), len(replies))
    expect("replies from " + addr, len(replies) >= 1 and summary in tail,
           "%d replies, summary %r expected" % (len(replies), summary))


def check_refused(d, what, status, want_status, title, err):
    print("%s: status %s, title %r, message %r"
          % (what, status, d.title, text_of(d, "p.err")))
    expect(what + ": status %d" % want_status, status == want_status, str(status))
    expect(what + ": title", d.title == title + " · looking glass", d.title)
    if err is not None:
        shown = text_of(d, "p.err")
        expect(what + ": message shown as text", shown == [err], repr(shown))
    no_injection(d, what)


def do_hostile(d, base):
    bad = "\"%s\" is not an IP address or prefix"
    bad_addr = "\"%s\" is not an IP address"
    # Typed into the form, as a user would.
    for text, button, err in (
        ("<script>alert(1)</script>", "Route", bad),
        ("\"><img src=x onerror=alert(1)>", "Route", bad),
        ("1.2.3.4;id", "Ping", bad_addr),
        ("../../etc/passwd", "Traceroute", bad_addr),
        ("::/0", "Ping", bad_addr),
    ):
        st, typed = submit(d, base, text, button)
        expect("typed %r kept as typed" % text, typed == text, repr(typed))
        check_refused(d, "form %s %r" % (button, text), st, 400, "Bad input", err % text)
    st, _ = submit(d, base, "<script>alert(1)</script>", "Route")
    src = d.page_source
    expect("script page source: escaped text, no <script> tag",
           "&lt;script&gt;alert(1)&lt;/script&gt;" in src and "<script" not in src, "")
    # The form's maxlength: 200 characters typed, 64 kept, refused as not an address.
    st, typed = submit(d, base, "A" * 200, "Route")
    expect("form keeps at most 64 characters", typed == "A" * 64, "%d kept" % len(typed))
    check_refused(d, "form 200 x A", st, 400, "Bad input", bad % ("A" * 64))
    # By URL: what the form cannot send.
    for path, want, title, err in (
        ("/route?q=%00", 400, "Bad input", bad % "\ufffd"),
        ("/route?q=" + "1" * 300, 400, "Bad input",
         "the input is too long (at most 64 characters)"),
        ("/route?q=" + "A" * 10000, 431, "Request too large", "The request is too large."),
        ("/route?q=172.20.2.1%2F16", 400, "Bad input",
         "172.20.2.1/16 has host bits set; the prefix is 172.20.0.0/16"),
        ("/ping?q=ff02%3A%3A1", 400, "Bad input",
         "ff02::1 cannot be probed from here (unspecified, multicast, broadcast or link-local)"),
        ("/route?q=1.2.3.4&x=%3Cscript%3E", 400, "Bad input", "the only parameter is q"),
        ("/route?q=%ZZ", 400, "Bad input", "the input is not valid percent-encoded UTF-8"),
        ("/etc/passwd", 404, "Not found", "There is no such page."),
    ):
        st = load(d, base + path)
        shown = path if len(path) < 60 else path[:40] + "...(%d chars)" % len(path)
        check_refused(d, "GET " + shown, st, want, title, err)
    # A prefix that is valid but not in the table is a lookup, not an error.
    st = load(d, base + "/route?q=%3A%3A%2F0")
    h2 = text_of(d, "main h2")
    expect("GET /route?q=::/0 is a lookup", st == 200 and h2 == ["Routes for ::/0"],
           "%s %s" % (st, h2))
    st = load(d, base + "/")
    expect("GET / still answers after all that",
           st == 200 and d.title == "Sessions · looking glass", "%s %r" % (st, d.title))


def do_mobile(d, base, outdir, query):
    for name, path, want in (("sessions", "/", 200), ("route", "/route?q=" + query, 200),
                             ("refused", "/route?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E", 400)):
        st = load(d, base + path)
        iw, sw = d.execute_script(
            "return [window.innerWidth, document.documentElement.scrollWidth]")
        expect("phone %s: status %s, scrollWidth %d <= innerWidth %d" % (path, st, sw, iw),
               st == want and iw == PHONE["width"] and sw <= iw, "")
        form = d.find_element(By.CSS_SELECTOR, "form input[name=q]").rect
        expect("phone %s: the input fits the screen" % path,
               form["x"] >= 0 and form["x"] + form["width"] <= iw and form["width"] > 100,
               str(form))
        f = os.path.join(outdir, "lg-phone-%s.png" % name)
        expect("screenshot " + f, d.save_screenshot(f), "")


def main():
    base, action, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    d = browser(phone=(action == "mobile"))
    try:
        if action == "sessions":
            do_sessions(d, base, args)
        elif action == "route":
            do_route(d, base, *args)
        elif action == "ping":
            do_ping(d, base, *args)
        elif action == "hostile":
            do_hostile(d, base)
        elif action == "mobile":
            do_mobile(d, base, *args)
        else:
            expect("known action " + action, False)
    finally:
        d.quit()
    if FAILED:
        print("failed: %s" % "; ".join(FAILED))
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
