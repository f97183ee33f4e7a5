// The manager dashboard's charts, drawn with Chart.js (served by the app from node_modules, see
// package.json). Data comes from the page's <script id="dashboard-charts" type="application/json">.
// Clicking a bar or a point opens the customers behind it. Each drawn canvas gets data-drawn="true"
// and data-points (how many non-empty values it shows), which the browser test checks.
(function () {
  "use strict";
  const source = document.getElementById("dashboard-charts");
  if (!source || typeof window.Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  const NOW = "#2563eb", BEFORE = "#94a3b8";
  const PALETTE = ["#94a3b8", "#60a5fa", "#34d399", "#22c55e", "#15803d", "#f59e0b", "#ef4444"];

  function countPoints(datasets) {
    return datasets.reduce((n, d) => n + d.data.filter((v) => v !== null && v !== 0).length, 0);
  }

  function draw(canvas, config, links) {
    config.options = Object.assign({
      responsive: true,
      maintainAspectRatio: true,
      animation: false,
      onClick(event, elements) {
        if (!elements.length) return;
        const el = elements[0];
        const href = Array.isArray(links) ? links[el.index] : links(el);
        if (href) window.location.assign(href);
      },
      plugins: { legend: { position: "bottom" } },
    }, config.options || {});
    new window.Chart(canvas, config);
    canvas.dataset.drawn = "true";
    canvas.dataset.points = String(countPoints(config.data.datasets));
  }

  function pair(chart, horizontal) {
    return {
      type: "bar",
      data: {
        labels: chart.labels,
        datasets: [
          { label: data.labels.now, data: chart.now, backgroundColor: NOW },
          { label: data.labels.before, data: chart.before, backgroundColor: BEFORE },
        ],
      },
      options: horizontal ? { indexAxis: "y" } : {},
    };
  }

  document.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
    const name = canvas.dataset.chart;
    const chart = data[name];
    if (!chart) return;
    if (name === "ladder") {
      draw(canvas, {
        type: "line",
        data: {
          labels: chart.labels,
          datasets: chart.series.map((s, i) => ({
            label: s.label, data: s.data, borderColor: PALETTE[i % PALETTE.length],
            backgroundColor: PALETTE[i % PALETTE.length], spanGaps: true, tension: 0.2,
          })),
        },
      }, (el) => chart.series[el.datasetIndex].link);
    } else {
      draw(canvas, pair(chart, name === "funnel"), chart.links);
    }
  });
})();
