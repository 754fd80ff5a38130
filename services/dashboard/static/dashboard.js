// Progressive enhancement only: every page works without this file (tables hold every number).
(function () {
  "use strict";
  var palette = ["#1f5fbf", "#2e9e5b", "#c2410c", "#7c3aed", "#0e7490", "#a16207"];

  function drawCharts() {
    if (typeof Chart === "undefined") return;
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var source = document.getElementById(canvas.id + "-data");
      if (!source) return;
      var data = JSON.parse(source.textContent);
      (data.datasets || []).forEach(function (set, i) {
        set.borderColor = set.borderColor || palette[i % palette.length];
        set.backgroundColor = set.backgroundColor || palette[i % palette.length];
      });
      var chart = new Chart(canvas, {
        type: canvas.dataset.chart,
        data: data,
        options: { responsive: true, maintainAspectRatio: false, animation: false,
                   plugins: { legend: { position: "bottom" } }, scales: { y: { beginAtZero: true } } }
      });
      canvas.dataset.ready = "true";
      canvas.pointsnetChart = chart;
    });
  }

  function autosubmit() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
  }

  function confirmations() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawCharts(); autosubmit(); confirmations(); });
})();
