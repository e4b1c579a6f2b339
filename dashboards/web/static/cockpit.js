// The wall screen: panels as /api/panels describes them, rows as /api/stream pushes them (server-sent events).
"use strict";
const LEFT = ["events_per_minute", "district_ranking", "ratio_721"];
const RIGHT = ["alert_feed", "overdue_cases", "top_labels"];
const MAPS = ["events_map", "smoke_map", "district_score_map"];   // drawn on the one map
const CASE_COLUMNS = ["case_id", "subject_id"];
const COLOURS = { green: "#3ddc97", orange: "#ffb020", red: "#ff5d5d", blue: "#4fc3ff" };
const token = new URLSearchParams(location.search).get("token");
const withToken = (url) => token ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : url;
const charts = {};
let defs = {}, districts = {}, codeOf = {}, district = "", source = null, map = null, last = null, byScore = false;

function fmt(v, unit, decimals) {
  if (v === null || v === undefined) return "—";
  if (unit === "percentunit") return (v * 100).toFixed(decimals ?? 1) + "%";
  if (typeof v === "number" && !Number.isInteger(v)) v = Number(v.toFixed(decimals ?? 2));
  if (unit.startsWith("suffix:")) return v.toLocaleString("zh-CN") + unit.slice(7);
  return unit === "none" ? String(v) : v + " " + unit;
}

function colour(def, v) {
  let chosen = def.thresholds[0][1];
  for (const [at, c] of def.thresholds.slice(1)) if (v !== null && v >= at) chosen = c;
  return chosen;
}

function shanghai(iso) {
  return new Date(iso).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false });
}

function box(def, parent) {
  const el = document.createElement("div");
  el.className = def.kind === "stat" ? "kpi" : "panel";
  el.id = "panel-" + def.key;
  el.dataset.state = "loading";
  el.innerHTML = `<h2></h2><div class="${def.kind === "stat" ? "value" : def.kind === "table" ? "scroll" : "chart"}"></div>`;
  el.querySelector("h2").textContent = def.title;
  el.title = def.description || "";
  parent.appendChild(el);
  return el;
}

function layout(panels) {
  for (const def of panels) {
    defs[def.key] = def;
    if (MAPS.includes(def.key)) continue;
    const parent = def.kind === "stat" ? "kpis" : LEFT.includes(def.key) ? "left" : RIGHT.includes(def.key) ? "right" : "more";
    box(def, document.getElementById(parent));
  }
  map = echarts.init(document.getElementById("map"), null, { renderer: "canvas" });
  // A district's region: the geo component draws it (the map series shares it), so the click comes from either.
  map.on("click", (p) => {
    if ((p.componentType === "geo" || p.seriesType === "map") && codeOf[p.name]) choose(codeOf[p.name] === district ? "" : codeOf[p.name]);
  });
  document.getElementById("map-panel").dataset.state = "loading";
}

function chartOf(el) {
  const node = el.querySelector(".chart");
  return charts[el.id] || (charts[el.id] = echarts.init(node, null, { renderer: "canvas" }));
}

const AXIS = { axisLabel: { color: "#9fb7e6" }, axisLine: { lineStyle: { color: "#1f4a8a" } }, splitLine: { lineStyle: { color: "#12305f" } } };

function draw(def, el, data) {
  const body = el.querySelector(".value, .scroll, .chart");
  if (data.error) { el.dataset.state = "error"; body.innerHTML = `<span class="error"></span>`; body.firstChild.textContent = data.error; return; }
  const rows = data.rows;
  el.dataset.state = rows.length ? "ok" : "empty";
  const label = (r) => r.slice(0, -1).join(" ");
  switch (def.kind) {
    case "stat": {
      const v = rows.length ? rows[0][0] : null;
      body.textContent = fmt(v, def.unit, def.decimals);
      body.className = "value " + colour(def, v);
      return;
    }
    case "timeseries": {
      const series = {};
      for (const [t, name, v] of rows) (series[name] = series[name] || []).push([t, v]);
      chartOf(el).setOption({ animation: false, grid: { left: 50, right: 16, top: 30, bottom: 24 },
        legend: { textStyle: { color: "#d7e3ff" } }, tooltip: { trigger: "axis" },
        xAxis: { type: "time", ...AXIS }, yAxis: { type: "value", ...AXIS },
        series: Object.entries(series).map(([name, d]) => ({ name, type: "line", showSymbol: false, data: d })) }, true);
      return;
    }
    case "piechart":
      chartOf(el).setOption({ animation: false, tooltip: {}, legend: { bottom: 0, textStyle: { color: "#d7e3ff" } },
        series: [{ type: "pie", radius: ["35%", "65%"], label: { color: "#d7e3ff" },
                   data: rows.map((r) => ({ name: label(r), value: r[r.length - 1] })) }] }, true);
      return;
    case "bargauge": {
      const top = rows.slice(0, 12).reverse();
      chartOf(el).setOption({ animation: false, grid: { left: 150, right: 60, top: 8, bottom: 8 },
        xAxis: { type: "value", show: false }, yAxis: { type: "category", data: top.map(label), ...AXIS },
        series: [{ type: "bar", data: top.map((r) => ({ value: r[r.length - 1], itemStyle: { color: COLOURS[colour(def, r[r.length - 1])] || "#4fc3ff" } })),
                   label: { show: true, position: "right", color: "#d7e3ff", formatter: (p) => fmt(p.value, def.unit, def.decimals) } }] }, true);
      return;
    }
    default:
      table(body, data);
  }
}

function table(body, data) {
  const t = document.createElement("table");
  const head = t.createTHead().insertRow();
  for (const h of data.headers) head.appendChild(document.createElement("th")).textContent = h;
  const tb = t.createTBody();
  for (const r of data.rows.slice(0, 50)) {
    const tr = tb.insertRow();
    r.forEach((v, i) => {
      const td = tr.insertCell();
      const col = data.columns[i];
      td.textContent = typeof v === "string" && /^\d{4}-\d\d-\d\dT/.test(v) ? shanghai(v) : v === null ? "—" : String(v);
      if (CASE_COLUMNS.includes(col) && v) { td.className = "case"; td.onclick = () => history(String(v)); }
    });
  }
  body.replaceChildren(t);
}

async function history(caseId) {
  const dlg = document.getElementById("case");
  const res = await fetch(withToken("/api/cases/" + encodeURIComponent(caseId)));
  const body = await res.json();
  dlg.querySelector("h2").textContent = "案件 " + caseId + " 办理过程";
  const out = dlg.querySelector(".scroll");
  if (!res.ok) out.textContent = body.detail || body.error;
  else table(out, { headers: ["版本", "状态", "时间", "部门", "层级", "问题类型", "街道", "超期", "说明"], columns: [],
    rows: body.history.map((h) => [h.version, h.status, h.occurred_at, h.department, h.tier, h.label, h.street, h.overdue ? "是" : "否", h.note]) });
  dlg.showModal();
}

function drawMap(snap) {
  const points = snap.panels.events_map, smoke = snap.panels.smoke_map;
  // Districts coloured by volume (区县受理量排名) or by 考核得分 (区县考核排名: rank, name, score, …).
  const ranking = byScore ? snap.panels.district_evaluation : snap.panels.district_ranking;
  const byName = {};
  if (ranking && ranking.rows) for (const r of ranking.rows) byName[byScore ? r[1] : r[0]] = byScore ? r[2] : r[r.length - 1];
  const max = byScore ? 100 : Math.max(1, ...Object.values(byName));
  const scale = byScore ? ["#ff5d5d", "#ffb020", "#3ddc97"] : ["#0b2a5b", "#1f6fb2", "#ffb020"];
  const xy = (data, value) => (data && data.rows ? data.rows : []).map((r) => {
    const o = Object.fromEntries(data.columns.map((c, i) => [c, r[i]]));
    return { name: o.street || o.device_id || o.grid_code, value: [o.longitude, o.latitude, o[value]] };
  });
  const cases = xy(points, "cases"), fumes = xy(smoke, smoke && smoke.columns ? smoke.columns[smoke.columns.length - 1] : "");
  const top = Math.max(1, ...cases.map((c) => c.value[2]));
  map.setOption({ animation: false, tooltip: { trigger: "item" },
    geo: { map: "zibo", roam: false, top: 20, bottom: 20, label: { show: true, color: "#d7e3ff" },
           itemStyle: { areaColor: "#0b2a5b", borderColor: "#4fc3ff" }, emphasis: { itemStyle: { areaColor: "#1f4a8a" } } },
    visualMap: { seriesIndex: 0, min: 0, max, calculable: false, left: 10, bottom: 10, text: byScore ? ["高分", "低分"] : ["多", "少"],
                 textStyle: { color: "#d7e3ff" }, inRange: { color: scale } },
    series: [
      { type: "map", geoIndex: 0, name: byScore ? "考核得分" : "受理量", data: Object.values(districts).map((n) => ({ name: n, value: byName[n] || 0, selected: codeOf[n] === district })) },
      // Markers let clicks through: a click anywhere in a district filters to it.
      { type: "scatter", coordinateSystem: "geo", name: "事件", data: cases, silent: true, symbolSize: (v) => 4 + 14 * Math.sqrt(v[2] / top), itemStyle: { color: "#4fc3ff" } },
      { type: "effectScatter", coordinateSystem: "geo", name: "油烟监测", data: fumes, silent: true, symbolSize: 8, itemStyle: { color: "#ff5d5d" } },
    ] }, true);
  document.getElementById("map-panel").dataset.state = points && points.error ? "error" : "ok";
}

function render(snap) {
  last = snap;
  for (const [key, data] of Object.entries(snap.panels)) {
    const el = document.getElementById("panel-" + key);
    if (el) draw(defs[key], el, data);
  }
  drawMap(snap);
  document.getElementById("place").textContent = snap.name;
  document.body.dataset.district = snap.district;
  document.body.dataset.updated = Date.now();
}

function listen() {
  if (source) source.close();
  source = new EventSource(withToken("/api/stream" + (district ? "?district=" + district : "")));
  const link = document.getElementById("link");
  source.addEventListener("snapshot", (e) => { link.textContent = "实时"; link.className = "up"; render(JSON.parse(e.data)); });
  source.onerror = () => { link.textContent = "重新连接中…"; link.className = "down"; };
}

function choose(code) {
  district = code || "";
  document.getElementById("all").hidden = !district;
  listen();
}

async function start() {
  const [meta, geo] = await Promise.all([fetch(withToken("/api/panels")).then((r) => r.json()),
                                         fetch("/static/vendor/zibo.geojson").then((r) => r.json())]);
  districts = meta.districts;
  codeOf = Object.fromEntries(Object.entries(districts).map(([c, n]) => [n, c]));
  echarts.registerMap("zibo", geo);
  layout(meta.panels);
  document.getElementById("all").onclick = () => choose("");
  document.getElementById("map-by").onclick = (e) => {
    byScore = !byScore;
    e.target.textContent = byScore ? "按受理量着色" : "按考核得分着色";
    if (last) drawMap(last);
  };
  setInterval(() => { document.getElementById("clock").textContent = new Date().toLocaleString("zh-CN", { hour12: false, timeZone: "Asia/Shanghai" }); }, 1000);
  window.addEventListener("resize", () => Object.values(charts).concat([map]).forEach((c) => c.resize()));
  listen();
}

start();
