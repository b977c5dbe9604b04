// Small page niceties that do not depend on the widgets: highlight the TOC entry of the section being read.
// Everything works without this file; it only adds aria-current to one TOC link.
(function () {
  "use strict";
  const links = Array.from(document.querySelectorAll(".toc a[href^='#']"));
  if (!links.length || !("IntersectionObserver" in window)) return;
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
})();
