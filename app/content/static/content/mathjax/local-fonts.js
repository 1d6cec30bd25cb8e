// Loaded just before MathJax 4 (exams/mathjax.py puts it there): MathJax 4 fetches its fonts
// from a public CDN unless its loader is told otherwise. They are served here, at /mathjax/fonts/.
(function () {
  "use strict";
  const config = (window.MathJax = window.MathJax || {});
  config.loader = config.loader || {};
  config.loader.paths = Object.assign({}, config.loader.paths, { fonts: "/mathjax/fonts" });
})();
