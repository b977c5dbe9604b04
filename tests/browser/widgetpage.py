"""Generic helpers for any widget page: wait for a status, set a control like a user would, read knobs from the URL."""
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
