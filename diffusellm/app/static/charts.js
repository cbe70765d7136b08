/* diffuseLLM admin, training page: draws the charts with uPlot from the page's JSON data block. */
(function () {
  "use strict";
  var COLOURS = {accepted: "#1a7f37", rejected: "#cf222e", open: "#bf8700", diffusion: "#8250df", llm: "#0969da"};
  var CURVES = ["#0969da", "#cf222e", "#1a7f37", "#bf8700", "#8250df", "#bf3989", "#1b7c83", "#57606a"];
  var drawn = {};
  window.diffusellmCharts = drawn;

  function line(label, colour) {
    return {label: label, stroke: colour, width: 2, spanGaps: false,
            points: {show: true, size: 7, width: 1, fill: colour, stroke: colour}};
  }

  function draw(name, yLabel, time, series, data) {
    var el = document.getElementById("chart-" + name);
    if (!el || !data[0].length) { return; }
    var options = {
      width: Math.max(320, el.clientWidth || 640), height: 260,
      scales: {x: {time: time}},
      axes: [{}, {label: yLabel}],
      series: [{label: time ? "day" : "step"}].concat(series)
    };
    drawn[name] = new uPlot(options, data, el);
  }

  function counts(name, keys, yLabel, block) {
    draw(name, yLabel, true, keys.map(function (k) { return line(k, COLOURS[k]); }),
         [block.x].concat(keys.map(function (k) { return block[k]; })));
  }

  function start() {
    var source = document.getElementById("learn-data");
    if (!source || typeof uPlot === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    counts("prs", ["accepted", "rejected", "open"], "pull requests so far", data.prs);
    counts("cores", ["diffusion", "llm"], "runs so far", data.cores);
    var loss = data.loss;
    draw("loss", "loss", false,
         loss.series.map(function (s, i) { return line(s.label, CURVES[i % CURVES.length]); }),
         [loss.x].concat(loss.series.map(function (s) { return s.values; })));
  }

  document.addEventListener("DOMContentLoaded", start);
})();
