// Set-up for the ipywidgets embedded in the book's pages. tools/vendor_assets.sh copies this
// file to _vendor/vendor/; _config.yml (nb_ipywidgets_js) loads it on pages with widgets,
// BEFORE require.js and @jupyter-widgets/html-manager's embed-amd.js.

// 1. RequireJS reads a global `require` object defined before it loads as its configuration.
//    html-manager derives its webpack public path (where its icon fonts are) from its AMD
//    module id; map that id onto the vendored folder, otherwise the fonts are looked up
//    next to the page (404).
var require = {
  paths: {
    "@jupyter-widgets/html-manager/dist": new URL("html-manager", document.currentScript.src).href,
  },
};

// 2. ipywidgets 8 typesets widget labels with the MathJax 2 API (MathJax.Hub.Queue), but the
//    book loads MathJax 3: without this each label raises "reading 'Queue'". Map the call onto
//    MathJax 3. DOMContentLoaded comes after the deferred MathJax script has run and before
//    html-manager renders the widgets (on `load`).
document.addEventListener("DOMContentLoaded", function () {
  var mj = window.MathJax;
  if (!mj || !mj.version || mj.Hub) return;
  mj.Hub = {
    Queue: function (job) {
      var el = job && job[2];
      var ready = (mj.startup && mj.startup.promise) || Promise.resolve();
      ready
        .then(function () {
          return mj.typesetPromise ? mj.typesetPromise(el ? [el] : undefined) : null;
        })
        .catch(function (err) {
          console.warn("MathJax could not typeset a widget label", err);
        });
    },
  };
});
