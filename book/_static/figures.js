// Figures enlarge on click: a figure of a cell's output (scaled down to fit the page's column) opens at its natural
// size in a full-screen overlay that scrolls; a click anywhere or Escape closes it. Plain JavaScript, no network.
(function () {
  "use strict";

  var STYLE = [
    ".cell_output img { cursor: zoom-in; }",
    ".nclib-zoom { position: fixed; inset: 0; z-index: 10000; overflow: auto; background: rgba(0, 0, 0, 0.85);",
    "  cursor: zoom-out; -webkit-overflow-scrolling: touch; }",
    ".nclib-zoom img { display: block; margin: 1rem auto; max-width: none; width: auto; height: auto;",
    "  background: #fff; }",
  ].join("\n");

  function open(source) {
    var overlay = document.createElement("div");
    overlay.className = "nclib-zoom";
    overlay.setAttribute("role", "dialog");
    overlay.setAttribute("aria-label", "figure at full size; click or press Escape to close");
    var img = document.createElement("img");
    img.src = source.currentSrc || source.src;
    img.alt = source.alt || "";
    overlay.appendChild(img);

    function close() {
      overlay.remove();
      document.removeEventListener("keydown", onKey);
    }
    function onKey(event) {
      if (event.key === "Escape") close();
    }
    overlay.addEventListener("click", close);
    document.addEventListener("keydown", onKey);
    document.body.appendChild(overlay);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var style = document.createElement("style");
    style.textContent = STYLE;
    document.head.appendChild(style);
    document.querySelectorAll(".cell_output img").forEach(function (img) {
      img.title = img.title || "click to enlarge";
      img.addEventListener("click", function () {
        open(img);
      });
    });
  });
})();
