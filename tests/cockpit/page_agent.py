#!/usr/bin/python3
"""Drives custguard's Cockpit page in headless Chromium through Selenium (chromium-driver).

tests/cockpit and bench/cockpit start it and speak a line protocol on its stdin/stdout:
one command per line, one answer per line, "ok [values]" or "error <what>".

  login URL USER PASS   log in on Cockpit's login page (PAM); ok once the shell is loaded,
                        error <the login page's message> when it is refused
  open URL              load the page, wait until it has read the daemon (body data-ready)
  wait_row JOB MS       wait for the held job's row; ok <Date.now() when it was added>
  first_row MS          wait for any held job's row; ok <job> <Date.now() when it was added>
  row_text JOB          the text of the job's row
  allow ZONE USER       allow USER in ZONE with the zone form
  wait_text ID TEXT MS  wait until the element's text contains TEXT
  table_row ID TEXT MS  wait for a row of table ID containing TEXT; ok <its text>
  approve JOB TEXT      click Approve (TEXT typed as the comment); ok <Date.now() at the click>
  reject JOB TEXT       click Reject with reason TEXT
  wait_gone JOB MS      wait until the row is gone
  history               click Show; ok <bars: reads per day> <reads per user> <denials per day> <record rows>
  text ID               the element's text
  lang CODE             Cockpit's language cookie (CockpitLang), then reload
  csp                   ok <number of content security policy reports in the console>
  screenshot PATH       a PNG of the page
  quit
"""
import sys

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def make_driver():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1800", "--lang=en-US"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


class Page:
    def __init__(self):
        self.driver = make_driver()
        self.url = None
        self.console = []

    def wait(self, ms, predicate, what):
        try:
            # The page replaces table rows when data arrives: a row read meanwhile is asked again.
            return WebDriverWait(self.driver, ms / 1000, poll_frequency=0.01,
                                 ignored_exceptions=[StaleElementReferenceException]).until(lambda d: predicate())
        except TimeoutException:
            raise RuntimeError(f"{what} not within {ms} ms")

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def keep_console(self):
        self.console += self.driver.get_log("browser")

    def load(self):
        self.driver.get(self.url)
        self.wait(30000, lambda: self.js("return document.body && document.body.dataset.ready === '1' "
                                         "|| (document.getElementById('error') && "
                                         "!document.getElementById('error').hidden);"), "the page")
        error = self.js("const e = document.getElementById('error'); return e.hidden ? '' : e.textContent;")
        if error:
            raise RuntimeError("the page shows an error: " + error)

    def login(self, url, user, password):
        self.driver.delete_all_cookies()
        self.driver.get(url)
        self.wait(30000, lambda: self.driver.find_elements(By.ID, "login-user-input"), "the login page")
        self.driver.find_element(By.ID, "login-user-input").send_keys(user)
        self.driver.find_element(By.ID, "login-password-input").send_keys(password)
        self.driver.find_element(By.ID, "login-button").click()

        def outcome():
            if self.driver.get_cookie("cockpit") and not self.driver.find_elements(By.ID, "login-user-input"):
                return "in"
            message = self.js("const e = document.getElementById('login-error-message');"
                              "return e && e.offsetParent !== null ? e.textContent : '';")
            return message or None
        result = self.wait(60000, outcome, "the login's outcome")
        if result != "in":
            raise RuntimeError("login refused: " + result)

    def row(self, job):
        return self.js("return document.querySelector('#held tr[data-job=\"' + CSS.escape(arguments[0]) + '\"]');",
                       job)

    def decide(self, job, text, cls):
        tr = self.row(job)
        if tr is None:
            raise RuntimeError(f"no row for job {job}")
        tr.find_element(By.CSS_SELECTOR, "input.reason").send_keys(text)
        button = tr.find_element(By.CSS_SELECTOR, "button." + cls)
        clicked = self.js("return Date.now();")
        button.click()
        return str(clicked)

    def command(self, line):
        name, _, rest = line.partition(" ")
        args = rest.split(" ") if rest else []
        if name == "login":
            self.login(args[0], args[1], args[2])
            return ""
        if name == "open":
            self.url = args[0]
            self.load()
            return ""
        if name == "wait_row":
            job, ms = args[0], int(args[1])
            tr = self.wait(ms, lambda: self.row(job), f"the row of job {job}")
            return tr.get_attribute("data-shown")
        if name == "first_row":
            tr = self.wait(int(args[0]), lambda: self.js("return document.querySelector('#held tbody tr');"),
                           "a held job's row")
            return tr.get_attribute("data-job") + " " + tr.get_attribute("data-shown")
        if name == "row_text":
            return self.row(args[0]).text.replace("\n", " ")
        if name == "allow":
            self.driver.find_element(By.CSS_SELECTOR, f"#z-zone option[value='{args[0]}']").click()
            user = self.driver.find_element(By.ID, "z-user")
            user.clear()
            user.send_keys(args[1])
            self.driver.find_element(By.ID, "z-allow").click()
            return ""
        if name == "wait_text":
            element, text, ms = args[0], " ".join(args[1:-1]), int(args[-1])
            self.wait(ms, lambda: text in self.driver.find_element(By.ID, element).text, f"{text!r} in #{element}")
            return ""
        if name == "table_row":
            table, text, ms = args[0], " ".join(args[1:-1]), int(args[-1])

            def find():
                for tr in self.driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr"):
                    if text in tr.text:
                        return tr.text.replace("\n", " ")
                return None
            return self.wait(ms, find, f"a row with {text!r} in #{table}")
        if name in ("approve", "reject"):
            return self.decide(args[0], " ".join(args[1:]), name)
        if name == "wait_gone":
            job, ms = args[0], int(args[1])
            self.wait(ms, lambda: self.row(job) is None, f"job {job} leaving the page")
            return ""
        if name == "history":
            self.js("document.getElementById('chart-days').dataset.bars = '';")
            self.driver.find_element(By.ID, "f-apply").click()
            self.wait(10000, lambda: self.js("return document.getElementById('chart-days').dataset.bars !== '';"),
                      "the history charts")
            return " ".join(str(v) for v in self.js(
                "return [document.getElementById('chart-days').dataset.bars,"
                " document.getElementById('chart-users').dataset.bars,"
                " document.getElementById('chart-denials').dataset.bars,"
                " document.querySelector('#history tbody').rows.length];"))
        if name == "text":
            return self.driver.find_element(By.ID, args[0]).text.replace("\n", " ")
        if name == "lang":
            self.keep_console()
            self.driver.add_cookie({"name": "CockpitLang", "value": args[0], "path": "/"})
            self.load()
            return ""
        if name == "csp":
            self.keep_console()
            reports = [e for e in self.console if "Content Security Policy" in e.get("message", "")]
            for e in reports:
                print(e.get("message"), file=sys.stderr)
            return str(len(reports))
        if name == "screenshot":
            self.driver.save_screenshot(args[0])
            return ""
        raise RuntimeError(f"unknown command {name!r}")


def main():
    page = Page()
    try:
        for line in sys.stdin:
            line = line.rstrip("\n")
            if line == "quit":
                break
            try:
                answer = page.command(line)
                print(("ok " + answer).rstrip(), flush=True)
            except Exception as e:  # every failure is an answer; the test decides
                print("error " + str(e).replace("\n", " "), flush=True)
    finally:
        page.driver.quit()


main()
