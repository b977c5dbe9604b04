// Small page niceties that do not depend on the widgets. Everything works without this file.
//  - the TOC entry of the section being read gets aria-current;
//  - the TOC is a sidebar (open) on wide screens and a closed disclosure on narrow ones, also after a resize or a
//    rotation, unless the reader toggled it; on a narrow screen, following one of its links closes it again;
//  - a code listing, table or display formula that scrolls sideways can be reached and scrolled with the keyboard.
(function () {
  "use strict";

  // ---------------------------------------------------------------- the TOC: sidebar or disclosure
  const WIDE = window.matchMedia("(min-width: 70rem)");   // the sidebar breakpoint in site.css
  const details = document.querySelector(".toc details");
  if (details) {
    let toggledByReader = false;
    details.querySelector("summary").addEventListener("click", () => { toggledByReader = true; });
    WIDE.addEventListener("change", () => { if (!toggledByReader) details.open = WIDE.matches; });
    details.addEventListener("click", (e) => {
      if (!WIDE.matches && e.target.closest("a[href^='#']")) details.open = false;
    });
  }

  // ---------------------------------------------------------------- the TOC: where am I
  const links = Array.from(document.querySelectorAll(".toc a[href^='#']"));
  if (links.length && "IntersectionObserver" in window) {
    const byId = new Map(links.map((a) => [decodeURIComponent(a.hash.slice(1)), a]));
    const headings = Array.from(byId.keys()).map((id) => document.getElementById(id)).filter(Boolean);
    const visible = new Set();
    const update = () => {
      // the first heading on screen, else the last one scrolled past
      let current = headings.find((h) => visible.has(h));
      if (!current) current = headings.filter((h) => h.getBoundingClientRect().top < 0).pop();
      links.forEach((a) => a.removeAttribute("aria-current"));
      if (current) byId.get(current.id).setAttribute("aria-current", "true");
    };
    const io = new IntersectionObserver((entries) => {
      entries.forEach((e) => (e.isIntersecting ? visible.add(e.target) : visible.delete(e.target)));
      update();
    });
    headings.forEach((h) => io.observe(h));
  }

  // ---------------------------------------------------------------- sideways scrollers and the keyboard
  // A box that scrolls sideways needs a tab stop so a keyboard reader can scroll it with the arrow keys; one that
  // fits does not (a tab stop per listing would be noise). Code listings are named by their caption.
  const scrollers = Array.from(document.querySelectorAll(".prose .highlight pre, .prose table, .prose math[display='block']"));
  if (!scrollers.length) return;
  for (const el of scrollers) {
    const caption = el.closest("figure")?.querySelector("figcaption");
    if (el.tagName === "PRE" && caption) {
      el.setAttribute("role", "group");
      el.setAttribute("aria-label", `Code: ${caption.textContent.trim()}`);
    }
  }
  const sync = () => {
    for (const el of scrollers) {
      const scrolls = el.scrollWidth > el.clientWidth + 1;
      if (scrolls && !el.hasAttribute("tabindex")) el.setAttribute("tabindex", "0");
      else if (!scrolls && el.getAttribute("tabindex") === "0" && document.activeElement !== el) el.removeAttribute("tabindex");
    }
  };
  let pending = 0;
  const soon = () => { cancelAnimationFrame(pending); pending = requestAnimationFrame(sync); };
  if ("ResizeObserver" in window) new ResizeObserver(soon).observe(document.documentElement);
  else window.addEventListener("resize", soon);
  document.fonts?.ready.then(soon);
  sync();
})();
