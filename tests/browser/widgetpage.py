"""Generic helpers for any widget page: wait for a status, set a control like a user would, read knobs from the URL;
`Widget(name)`: the helpers a widget's test module binds to its name (its dataset, its controls, its Train button)."""
import json
import urllib.parse

BOOT_TIMEOUT_MS = 90_000
SETTLE_TIMEOUT_MS = 15_000


def root_selector(name):
    return f'[data-widget="{name}"]'


def status(page, name):
    return page.get_attribute(root_selector(name), "data-status")


def wait_status(page, name, statuses=("ready",), timeout=SETTLE_TIMEOUT_MS):
    """Wait until the widget's data-status is one of `statuses` and aria-busy agrees."""
    page.wait_for_function(
        """([sel, statuses]) => {
            const e = document.querySelector(sel);
            if (!e || !statuses.includes(e.dataset.status)) return false;
            const busy = e.dataset.status === "booting" || e.dataset.status === "busy";
            return e.getAttribute("aria-busy") === String(busy);
        }""", arg=[root_selector(name), list(statuses)], timeout=timeout)
    return status(page, name)


def wait_settled(page, name, timeout=SETTLE_TIMEOUT_MS):
    """ready or error (an explained error is a settled state too)."""
    return wait_status(page, name, ("ready", "error"), timeout)


def wait_booted(page, name, timeout=BOOT_TIMEOUT_MS):
    return wait_status(page, name, ("ready", "error"), timeout)


def set_control(page, locator, value):
    """Set an <input>/<select> and fire input + change, as a drag or a pick does."""
    locator.evaluate("""(e, v) => {
        e.value = String(v);
        e.dispatchEvent(new Event("input", {bubbles: true}));
        e.dispatchEvent(new Event("change", {bubbles: true}));
    }""", value)


def hash_knobs(url, key):
    """The knobs a page URL carries for widget `key` (#w-<key>=<urlencoded JSON>), or None."""
    fragment = urllib.parse.urlsplit(url).fragment
    for part in fragment.split("&"):
        if part.startswith(f"w-{key}="):
            return json.loads(urllib.parse.unquote(part[len(key) + 3:]))
    return None


def knobs_hash(key, knobs):
    return f"#w-{key}=" + urllib.parse.quote(json.dumps(knobs, separators=(",", ":")))


def hash_of(page, key):
    """hash_knobs of the page's URL, once the runtime's debounced hash write has put widget `key` there."""
    page.wait_for_function("key => location.hash.includes('w-' + key + '=')", arg=key, timeout=5_000)
    page.wait_for_timeout(300)
    return hash_knobs(page.url, key)


class Widget:
    """A widget test module's helpers, bound to the widget's name and its longest wait (a training run):

        ui = Widget("pretrain", timeout=60_000)
        NAME, ROOT, PAGE = ui.name, ui.root, ui.path
        ds, wait_for, hash_of, click_train, stop = ui.ds, ui.wait_for, ui.hash_of, ui.click_train, ui.stop
    """

    def __init__(self, name, timeout=SETTLE_TIMEOUT_MS, path=None):
        self.name = name
        self.root = root_selector(name)
        self.path = path or f"widgets/{name}.html"      # its standalone page in the built site
        self.timeout = timeout

    def ds(self, page, key):
        """A data-* attribute of the widget's root, JSON-decoded when it holds JSON ("NaN" strings are the
        worker's non-finite floats); None when absent."""
        raw = page.evaluate("([sel, k]) => document.querySelector(sel).dataset[k] ?? null", [self.root, key])
        return None if raw is None else json.loads(raw) if raw[:1] in "[{" else raw

    def wait_for(self, page, js, timeout=None):
        """Wait until `js`, an expression over `d` (the widget root's dataset), is true."""
        page.wait_for_function(f"sel => {{ const d = document.querySelector(sel).dataset; return {js}; }}",
                               arg=self.root, timeout=timeout or self.timeout)

    def hash_of(self, page):
        """The widget's knobs from the URL (see hash_of)."""
        return hash_of(page, self.name)

    def control(self, page, knob):
        """The <input> or <select> bound to `knob` (api.ui.range / api.ui.select)."""
        return page.locator(f'{self.root} .w-field[data-knob="{knob}"] input, '
                            f'{self.root} .w-field select[name="{knob}"]').first

    def click_train(self, page):
        """Press the training loop's button (Train / Stop / Resume, api.trainLoop)."""
        page.locator(f"{self.root} .w-train").click()

    def stop(self, page):
        """Press Stop and wait for the loop to end (it finishes the chunk in flight first) and the widget to settle."""
        assert page.locator(f"{self.root} .w-train").inner_text() == "Stop"
        self.click_train(page)
        self.wait_for(page, 'd.train === "stopped" || d.train === "done"', 15_000)
        wait_settled(page, self.name)
