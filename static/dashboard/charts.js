// Draws every figure the server embedded: an element with data-figure="<id>" gets the Plotly
// figure in <script id="<id>" type="application/json"> (built in Python, see <app>/charts.py).
(function () {
  "use strict";
  const config = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };

  function plotWithin(root) {
    root.querySelectorAll("[data-figure]").forEach(function (target) {
      const source = document.getElementById(target.dataset.figure);
      if (!source) return;
      const figure = JSON.parse(source.textContent);
      Plotly.newPlot(target, figure.data, figure.layout, config);
    });
  }

  window.tsCharts = { plotWithin: plotWithin };
  plotWithin(document);
})();
