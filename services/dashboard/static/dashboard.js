// Progressive enhancement only: every page works without this file (tables hold every number).
(function () {
  "use strict";
  var palette = ["#1f5fbf", "#2e9e5b", "#c2410c", "#7c3aed", "#0e7490", "#a16207"];

  // An amount as the tables write it (format_money): "-¥59,567.89", or "1,234.50 XYZ" without a symbol.
  // Exact decimal text (a data point) is grouped as text; a tick (a number) through toLocaleString.
  function moneyText(value, money, tick) {
    var text;
    if (typeof value === "string" && /^-?[0-9]+(\.[0-9]+)?$/.test(value)) {
      var parts = value.replace("-", "").split(".");
      text = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, ",") + (parts[1] ? "." + parts[1] : "");
    } else {
      text = Math.abs(Number(value)).toLocaleString("en-US", {
        minimumFractionDigits: tick ? 0 : money.digits, maximumFractionDigits: money.digits });
    }
    var sign = Number(value) < 0 ? "-" : "";
    return money.symbol ? sign + money.symbol + text : sign + text + " " + money.code;
  }

  // A chart's JSON may name its axes ({"axes": {"x": …, "y": …}}) and say that its values are money
  // in major units ({"money": {"symbol", "code", "digits"}}): titled axes, ticks and tooltips as money.
  function chartOptions(data) {
    var y = { beginAtZero: true }, x = {}, tooltip = {};
    if (data.axes) {
      if (data.axes.x) x.title = { display: true, text: data.axes.x };
      if (data.axes.y) y.title = { display: true, text: data.axes.y };
    }
    if (data.money) {
      var money = data.money;
      y.ticks = { callback: function (value) { return moneyText(value, money, true); } };
      tooltip.callbacks = { label: function (context) {
        return context.dataset.label + ": " + moneyText(context.raw, money, false);
      } };
    }
    return { responsive: true, maintainAspectRatio: false, animation: false,
             plugins: { legend: { position: "bottom" }, tooltip: tooltip }, scales: { x: x, y: y } };
  }

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
        data: { labels: data.labels, datasets: data.datasets },
        options: chartOptions(data)
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

  // A form that came back refused: the reason above it takes the focus, so a screen reader reads it and the
  // keyboard starts from it (the reason is linked to the form, whose fields keep what was typed).
  function focusRefusal() {
    var reason = document.querySelector("main p.error[role='alert']");
    if (!reason) return;
    reason.tabIndex = -1;
    reason.focus();
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts(); autosubmit(); confirmations(); focusRefusal();
  });
})();
