// The dashboard's own SVG charts: line, bar (vertical and horizontal, grouped or stacked),
// stacked proportion (100 %), donut and heatmap. No library: each chart is a <figure> with
// an <svg> drawn from plain numbers, a legend, a readout that hover and the keyboard update
// (the chart is one tab stop; arrow keys move between data points), a <title> on every mark
// for the browser's tooltip, and the same numbers as a table for screen readers.
//
// Colours come from the stylesheet (classes c0…c6, h0…h5), geometry from attributes: nothing
// here writes a style attribute, so the page runs under `Content-Security-Policy:
// default-src 'self'`. Each figure carries `data-points`, the number of data marks drawn.

const SVG = "http://www.w3.org/2000/svg";
const HEIGHT = 260;
const SERIES_COLOURS = 7;
const HEAT_LEVELS = 5;

const numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const shareFormat = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });

function defaultFormat(value) {
  return value === null || value === undefined || Number.isNaN(value) ? "–" : numberFormat.format(value);
}

function svgElement(name, attributes, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, String(value));
  if (parent) parent.appendChild(node);
  return node;
}

function htmlElement(name, attributes, parent, text) {
  const node = document.createElement(name);
  for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

function title(node, text) {
  svgElement("title", {}, node).textContent = text;
}

// A series or item may name its colour (`colour`: 0…6) so that a name keeps its colour when
// filters change which series are present; otherwise its position decides.
function colour(entry, position) {
  return `c${(Number.isInteger(entry.colour) ? entry.colour : position) % SERIES_COLOURS}`;
}

// Charts are drawn at the width they have on screen, so text keeps its size (11 px labels stay
// 11 px on a phone); 640 units while the container is not laid out.
function widthOf(container) {
  const width = container.clientWidth;
  return width > 0 ? Math.max(300, Math.min(1200, Math.round(width))) : 640;
}

function isValue(v) {
  return typeof v === "number" && Number.isFinite(v);
}

/** Tick values that are round numbers covering [lo, hi]. */
export function niceTicks(lo, hi, count = 5, minStep = 0) {
  if (!(hi > lo)) {
    const pad = Math.abs(hi) > 0 ? Math.abs(hi) * 0.1 : 1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = Math.max(minStep, [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) || raw);
  const first = Math.floor(lo / step + 1e-9) * step;
  const last = Math.ceil(hi / step - 1e-9) * step;
  const ticks = [];
  for (let t = first; t <= last + step / 2; t += step) ticks.push(Math.round(t / step) * step);
  return ticks;
}

// The frame every chart shares: figure, svg, legend, readout, data table.
function frame(container, spec, kind, width) {
  container.replaceChildren();
  const figure = htmlElement("figure", { class: `chart chart-${kind}`, "data-kind": kind }, container);
  const svg = svgElement(
    "svg",
    {
      viewBox: `0 0 ${width} ${spec.height || HEIGHT}`,
      role: "img",
      tabindex: 0,
      "aria-label": `${spec.title}. ${spec.summary || ""} Use the arrow keys to read the values.`,
      preserveAspectRatio: "xMidYMid meet",
    },
    figure,
  );
  const readout = htmlElement("p", { class: "readout", "aria-live": "polite" }, null);
  return { figure, svg, readout };
}

function finish(parts, spec, legendItems, table) {
  // legendItems: [{ name, colour? }]
  const { figure, readout } = parts;
  if (legendItems && legendItems.length > 1) {
    const legend = htmlElement("ul", { class: "legend", "aria-label": "Legend" }, figure);
    legendItems.forEach((entry, i) => {
      const item = htmlElement("li", {}, legend);
      htmlElement("span", { class: `swatch ${colour(entry, i)}`, "aria-hidden": "true" }, item);
      item.appendChild(document.createTextNode(entry.name));
    });
  }
  readout.textContent = spec.hint || "Hover, or focus the chart and use the arrow keys, to read values.";
  readout.classList.add("hint");
  figure.appendChild(readout);
  const details = htmlElement("details", { class: "data-table" }, figure);
  htmlElement("summary", {}, details, "Data table");
  const wrap = htmlElement("div", { class: "table-wrap" }, details);
  const tableNode = htmlElement("table", {}, wrap);
  htmlElement("caption", {}, tableNode, spec.title);
  const head = htmlElement("tr", {}, htmlElement("thead", {}, tableNode));
  table.head.forEach((h) => htmlElement("th", { scope: "col" }, head, h));
  const body = htmlElement("tbody", {}, tableNode);
  for (const row of table.rows) {
    const tr = htmlElement("tr", {}, body);
    row.forEach((cell, i) => htmlElement(i === 0 ? "th" : "td", i === 0 ? { scope: "row" } : {}, tr, cell));
  }
}

function empty(container, spec) {
  container.replaceChildren();
  const figure = htmlElement("figure", { class: "chart chart-empty", "data-points": 0 }, container);
  htmlElement("p", { class: "empty" }, figure, spec.emptyText || "No data for this selection.");
  return figure;
}

// Keyboard and pointer navigation over positions 0…count-1 (and rows, for the heatmap).
function navigate(svg, count, show, { rows = 1, columns = count } = {}) {
  let active = -1;
  const move = (index) => {
    if (count === 0) return;
    active = Math.max(0, Math.min(count - 1, index));
    show(active);
  };
  svg.addEventListener("keydown", (event) => {
    const start = active < 0 ? 0 : active;
    const next = {
      ArrowRight: start + 1,
      ArrowLeft: start - 1,
      ArrowDown: rows > 1 ? start + columns : start + 1,
      ArrowUp: rows > 1 ? start - columns : start - 1,
      Home: 0,
      End: count - 1,
    }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    move(active < 0 ? 0 : next);
  });
  svg.addEventListener("focus", () => move(active < 0 ? 0 : active));
  return move;
}

function categoryLabelStep(count, room) {
  return Math.max(1, Math.ceil(count / room));
}

function xAxis(svg, categories, xOf, plot, format) {
  // Returned so that it can be drawn again over the marks (bar outlines would cut the line).
  const step = categoryLabelStep(categories.length, Math.floor((plot.right - plot.left) / 56));
  const axis = svgElement("g", { class: "axis x", "aria-hidden": "true" }, svg);
  svgElement("line", { x1: plot.left, x2: plot.right, y1: plot.bottom, y2: plot.bottom }, axis);
  categories.forEach((c, i) => {
    if (i % step !== 0) return;
    const text = svgElement("text", { x: xOf(i), y: plot.bottom + 16, "text-anchor": "middle" }, axis);
    text.textContent = format(c);
  });
  return axis;
}

function yAxis(svg, ticks, yOf, plot, format, label) {
  const axis = svgElement("g", { class: "axis y", "aria-hidden": "true" }, svg);
  for (const t of ticks) {
    svgElement("line", { class: "grid", x1: plot.left, x2: plot.right, y1: yOf(t), y2: yOf(t) }, axis);
    const text = svgElement("text", { x: plot.left - 6, y: yOf(t) + 4, "text-anchor": "end" }, axis);
    text.textContent = format(t);
  }
  if (label) {
    const text = svgElement(
      "text",
      { class: "axis-label", x: 12, y: (plot.top + plot.bottom) / 2, "text-anchor": "middle", transform: `rotate(-90 12 ${(plot.top + plot.bottom) / 2})` },
      axis,
    );
    text.textContent = label;
  }
}

function plotArea(spec, width) {
  const left = spec.yLabel ? 66 : 56;
  return { left, right: width - 12, top: 14, bottom: (spec.height || HEIGHT) - 30 };
}

/**
 * Line chart. spec: { title, categories: [x…], series: [{ name, values: [number|null…] }],
 * format?, xFormat?, yLabel?, zero? (start the axis at 0) }.
 */
export function line(container, spec) {
  return categorical(container, spec, "line");
}

/** Vertical bars, grouped when there are several series (same spec as line). */
export function bar(container, spec) {
  return categorical(container, spec, "bar");
}

/** Vertical bars with the series stacked (same spec as line). */
export function stackedBar(container, spec) {
  return categorical(container, spec, "stacked");
}

/** Stacked bars scaled to 100 % of each category: the split, not the amount. */
export function proportionBar(container, spec) {
  return categorical(container, spec, "proportion");
}

function categorical(container, spec, kind) {
  const { categories, series } = spec;
  const format = spec.format || defaultFormat;
  const xFormat = spec.xFormat || String;
  const points = series.reduce((n, s) => n + s.values.filter(isValue).length, 0);
  if (!categories.length || points === 0) return empty(container, spec);
  const width = widthOf(container);
  const parts = frame(container, spec, kind, width);
  const { figure, svg, readout } = parts;
  const plot = plotArea(spec, width);
  const n = categories.length;
  const band = (plot.right - plot.left) / n;
  const xOf = (i) => plot.left + band * (i + 0.5);

  const totals = categories.map((_, i) => series.reduce((t, s) => t + (isValue(s.values[i]) ? s.values[i] : 0), 0));
  let lo;
  let hi;
  if (kind === "proportion") {
    lo = 0;
    hi = 100;
  } else if (kind === "stacked") {
    lo = 0;
    hi = Math.max(...totals);
  } else {
    const all = series.flatMap((s) => s.values.filter(isValue));
    lo = Math.min(...all);
    hi = Math.max(...all);
    if (kind === "bar" || spec.zero) lo = Math.min(0, lo);
    if (kind === "bar") hi = Math.max(0, hi);
  }
  // Counts get whole-number ticks.
  const whole = kind !== "proportion" && series.every((s) => s.values.every((v) => !isValue(v) || Number.isInteger(v)));
  const ticks = niceTicks(lo, hi, 5, whole ? 1 : 0);
  const y0 = ticks[0];
  const y1 = ticks[ticks.length - 1];
  const yOf = (v) => plot.bottom - ((v - y0) / (y1 - y0 || 1)) * (plot.bottom - plot.top);
  const tickFormat = kind === "proportion" ? (t) => `${t} %` : format;
  yAxis(svg, ticks, yOf, plot, tickFormat, spec.yLabel);
  const baseline = xAxis(svg, categories, xOf, plot, xFormat);

  const hits = svgElement("g", { class: "hits", "aria-hidden": "true" }, svg);
  const highlight = svgElement("rect", { class: "highlight", x: 0, y: plot.top, width: band, height: plot.bottom - plot.top, visibility: "hidden" }, svg);
  highlight.setAttribute("aria-hidden", "true");
  const marks = svgElement("g", { class: "marks" }, svg);
  const byCategory = categories.map(() => []);
  const valueText = (s, i) => {
    const v = s.values[i];
    if (kind === "proportion" && isValue(v)) {
      return `${shareFormat.format(totals[i] ? (100 * v) / totals[i] : 0)} % (${format(v)})`;
    }
    return format(v);
  };

  if (kind === "line") {
    series.forEach((s, si) => {
      let d = "";
      let pen = false;
      s.values.forEach((v, i) => {
        if (!isValue(v)) {
          pen = false;
          return;
        }
        d += `${pen ? "L" : "M"}${xOf(i).toFixed(1)},${yOf(v).toFixed(1)}`;
        pen = true;
      });
      svgElement("path", { class: `line ${colour(s, si)}`, d }, marks);
      s.values.forEach((v, i) => {
        if (!isValue(v)) return;
        const dot = svgElement("circle", { class: `mark dot ${colour(s, si)}`, cx: xOf(i), cy: yOf(v), r: n > 60 ? 2 : 3.5 }, marks);
        title(dot, `${xFormat(categories[i])} · ${s.name}: ${format(v)}`);
        byCategory[i].push(dot);
      });
    });
  } else if (kind === "bar") {
    const groupWidth = Math.min(band * 0.8, 28 * series.length);
    const width = groupWidth / series.length;
    const base = yOf(Math.max(y0, Math.min(0, y1)));
    series.forEach((s, si) => {
      s.values.forEach((v, i) => {
        if (!isValue(v)) return;
        const x = xOf(i) - groupWidth / 2 + si * width;
        const y = yOf(v);
        const rect = svgElement(
          "rect",
          { class: `mark ${colour(s, si)}`, x: x + 0.5, y: Math.min(y, base), width: Math.max(1, width - 1), height: Math.max(1, Math.abs(base - y)) },
          marks,
        );
        title(rect, `${xFormat(categories[i])} · ${s.name}: ${format(v)}`);
        byCategory[i].push(rect);
      });
    });
  } else {
    const width = Math.min(band * 0.75, 40);
    categories.forEach((c, i) => {
      let acc = 0;
      series.forEach((s, si) => {
        const v = s.values[i];
        if (!isValue(v) || v <= 0) return;
        const share = kind === "proportion" ? (totals[i] ? (100 * v) / totals[i] : 0) : v;
        const top = yOf(acc + share);
        const bottom = yOf(acc);
        acc += share;
        const rect = svgElement(
          "rect",
          { class: `mark segment ${colour(s, si)}`, x: xOf(i) - width / 2, y: top, width, height: Math.max(0.5, bottom - top) },
          marks,
        );
        title(rect, `${xFormat(c)} · ${s.name}: ${valueText(s, i)}`);
        byCategory[i].push(rect);
      });
    });
  }

  svg.appendChild(baseline);
  const show = (i) => {
    highlight.setAttribute("x", plot.left + band * i);
    highlight.setAttribute("visibility", "visible");
    for (const m of svg.querySelectorAll(".mark.active")) m.classList.remove("active");
    byCategory[i].forEach((m) => m.classList.add("active"));
    const values = series.map((s) => `${s.name}: ${valueText(s, i)}`);
    if (kind === "stacked" && series.length > 1) values.push(`total: ${format(totals[i])}`);
    readout.classList.remove("hint");
    readout.textContent = `${xFormat(categories[i])} — ${values.join(" · ")}`;
  };
  const move = navigate(svg, n, show);
  categories.forEach((_, i) => {
    const hit = svgElement("rect", { x: plot.left + band * i, y: plot.top, width: band, height: plot.bottom - plot.top, fill: "transparent" }, hits);
    hit.addEventListener("pointerenter", () => move(i));
    byCategory[i].forEach((m) => m.addEventListener("pointerenter", () => move(i)));
  });

  const count = byCategory.reduce((t, marksOfCategory) => t + marksOfCategory.length, 0);
  figure.setAttribute("data-points", count);
  finish(parts, spec, series, {
    head: [spec.xName || "", ...series.map((s) => s.name), ...(kind === "stacked" && series.length > 1 ? ["Total"] : [])],
    rows: categories.map((c, i) => [
      xFormat(c),
      ...series.map((s) => valueText(s, i)),
      ...(kind === "stacked" && series.length > 1 ? [format(totals[i])] : []),
    ]),
  });
  return figure;
}

/**
 * Horizontal bars, one per item, sorted as given. spec: { title, items: [{ label, value,
 * note? }], format? }.
 */
export function hbar(container, spec) {
  const items = spec.items.filter((item) => isValue(item.value));
  if (!items.length) return empty(container, spec);
  const format = spec.format || defaultFormat;
  const rowHeight = 24;
  const height = Math.max(120, items.length * rowHeight + 40);
  const longest = Math.max(...items.map((item) => String(item.label).length));
  const width = widthOf(container);
  const labelWidth = Math.min(240, width * 0.4, Math.max(60, longest * 6.6 + 12));
  // Longer labels are cut here; the tooltip, the readout and the table have them whole.
  const room = Math.floor((labelWidth - 12) / 6.2);
  const shorten = (text) => (text.length > room ? `${text.slice(0, room - 1)}…` : text);
  const plot = { left: labelWidth, right: width - 60, top: 10, bottom: height - 26 };
  const parts = frame(container, { ...spec, height }, "hbar", width);
  const { figure, svg, readout } = parts;
  const max = Math.max(0, ...items.map((item) => item.value));
  const whole = items.every((item) => Number.isInteger(item.value));
  const ticks = niceTicks(0, spec.max !== undefined ? Math.max(spec.max, max) : max, 5, whole ? 1 : 0);
  const top = ticks[ticks.length - 1];
  const xOf = (v) => plot.left + (v / (top || 1)) * (plot.right - plot.left);
  const axis = svgElement("g", { class: "axis x", "aria-hidden": "true" }, svg);
  for (const t of ticks) {
    svgElement("line", { class: "grid", x1: xOf(t), x2: xOf(t), y1: plot.top, y2: plot.bottom }, axis);
    const text = svgElement("text", { x: xOf(t), y: plot.bottom + 16, "text-anchor": "middle" }, axis);
    text.textContent = format(t);
  }
  if (spec.reference !== undefined) {
    svgElement("line", { class: "reference", x1: xOf(spec.reference), x2: xOf(spec.reference), y1: plot.top - 4, y2: plot.bottom }, svg);
  }
  const marks = svgElement("g", { class: "marks" }, svg);
  const labels = svgElement("g", { class: "axis labels", "aria-hidden": "true" }, svg);
  const rects = items.map((item, i) => {
    const y = plot.top + i * rowHeight + 4;
    const label = svgElement("text", { x: plot.left - 8, y: y + 12, "text-anchor": "end" }, labels);
    label.textContent = shorten(String(item.label));
    const rect = svgElement(
      "rect",
      { class: `mark ${colour(item, 0)}`, x: plot.left, y, width: Math.max(1, xOf(item.value) - plot.left), height: rowHeight - 8 },
      marks,
    );
    title(rect, `${item.label}: ${format(item.value)}${item.note ? ` (${item.note})` : ""}`);
    const value = svgElement("text", { class: "value", x: xOf(item.value) + 4, y: y + 12 }, labels);
    value.textContent = format(item.value);
    return rect;
  });
  const show = (i) => {
    rects.forEach((r, j) => r.classList.toggle("active", i === j));
    const item = items[i];
    readout.classList.remove("hint");
    readout.textContent = `${item.label}: ${format(item.value)}${item.note ? ` (${item.note})` : ""}`;
  };
  const move = navigate(svg, items.length, show);
  rects.forEach((rect, i) => rect.addEventListener("pointerenter", () => move(i)));
  figure.setAttribute("data-points", rects.length);
  finish(parts, spec, null, {
    head: [spec.labelName || "", spec.valueName || "Value", ...(items.some((item) => item.note) ? ["Note"] : [])],
    rows: items.map((item) => [item.label, format(item.value), ...(items.some((x) => x.note) ? [item.note || ""] : [])]),
  });
  return figure;
}

/** Donut: the parts of one whole. spec: { title, items: [{ label, value }], format?, centre? }. */
export function donut(container, spec) {
  const items = spec.items.filter((item) => isValue(item.value) && item.value > 0);
  const total = items.reduce((t, item) => t + item.value, 0);
  if (!items.length || total <= 0) return empty(container, spec);
  const format = spec.format || defaultFormat;
  const width = widthOf(container);
  const parts = frame(container, { ...spec, height: 220 }, "donut", width);
  const { figure, svg, readout } = parts;
  const cx = width / 2;
  const cy = 110;
  const outer = 96;
  const inner = 58;
  const marks = svgElement("g", { class: "marks" }, svg);
  const share = (item) => `${shareFormat.format((100 * item.value) / total)} %`;
  let angle = -Math.PI / 2;
  const point = (r, a) => `${(cx + r * Math.cos(a)).toFixed(2)},${(cy + r * Math.sin(a)).toFixed(2)}`;
  const paths = items.map((item, i) => {
    const sweep = Math.min((2 * Math.PI * item.value) / total, 2 * Math.PI - 1e-4);
    const end = angle + sweep;
    const large = sweep > Math.PI ? 1 : 0;
    const d = `M${point(outer, angle)}A${outer},${outer} 0 ${large} 1 ${point(outer, end)}L${point(inner, end)}A${inner},${inner} 0 ${large} 0 ${point(inner, angle)}Z`;
    angle = end;
    const path = svgElement("path", { class: `mark segment ${colour(item, i)}`, d }, marks);
    title(path, `${item.label}: ${format(item.value)} (${share(item)})`);
    return path;
  });
  const centre = svgElement("text", { class: "centre", x: cx, y: cy + 6, "text-anchor": "middle" }, svg);
  centre.textContent = spec.centre || format(total);
  const show = (i) => {
    paths.forEach((p, j) => p.classList.toggle("active", i === j));
    readout.classList.remove("hint");
    readout.textContent = `${items[i].label}: ${format(items[i].value)} (${share(items[i])})`;
  };
  const move = navigate(svg, items.length, show);
  paths.forEach((path, i) => path.addEventListener("pointerenter", () => move(i)));
  figure.setAttribute("data-points", paths.length);
  finish(parts, spec, items.map((item) => ({ name: item.label, colour: item.colour })), {
    head: [spec.labelName || "", spec.valueName || "Value", "Share"],
    rows: items.map((item) => [item.label, format(item.value), share(item)]),
  });
  return figure;
}

/**
 * Heatmap: values over two categories. spec: { title, columns: [x…], rows: [y…], values:
 * [[row][column] number|null], format?, columnFormat? }.
 */
export function heatmap(container, spec) {
  const { columns, rows, values } = spec;
  const format = spec.format || defaultFormat;
  const columnFormat = spec.columnFormat || String;
  const all = values.flat().filter(isValue);
  if (!all.length || Math.max(...all) <= 0) return empty(container, spec);
  const longest = Math.max(...rows.map((r) => String(r).length));
  const left = Math.min(140, Math.max(48, longest * 6.6 + 12));
  const cellHeight = 26;
  const height = rows.length * cellHeight + 44;
  const width = widthOf(container);
  const plot = { left, right: width - 12, top: 8, bottom: 8 + rows.length * cellHeight };
  const parts = frame(container, { ...spec, height }, "heatmap", width);
  const { figure, svg, readout } = parts;
  const cellWidth = (plot.right - plot.left) / columns.length;
  const max = Math.max(...all);
  const level = (v) => (isValue(v) && v > 0 ? Math.min(HEAT_LEVELS, 1 + Math.floor(((HEAT_LEVELS - 1) * v) / max)) : 0);
  const axis = svgElement("g", { class: "axis", "aria-hidden": "true" }, svg);
  rows.forEach((r, ri) => {
    const text = svgElement("text", { x: plot.left - 6, y: plot.top + ri * cellHeight + 17, "text-anchor": "end" }, axis);
    text.textContent = r;
  });
  const step = categoryLabelStep(columns.length, Math.floor((plot.right - plot.left) / 28));
  columns.forEach((c, ci) => {
    if (ci % step !== 0) return;
    const text = svgElement("text", { x: plot.left + (ci + 0.5) * cellWidth, y: plot.bottom + 16, "text-anchor": "middle" }, axis);
    text.textContent = columnFormat(c);
  });
  if (spec.xLabel) {
    const text = svgElement("text", { class: "axis-label", x: (plot.left + plot.right) / 2, y: plot.bottom + 32, "text-anchor": "middle" }, axis);
    text.textContent = spec.xLabel;
  }
  const marks = svgElement("g", { class: "marks" }, svg);
  const cells = [];
  let points = 0;
  rows.forEach((r, ri) => {
    columns.forEach((c, ci) => {
      const v = values[ri][ci];
      if (isValue(v) && v > 0) points++;
      const cell = svgElement(
        "rect",
        { class: `mark cell h${level(v)}`, x: plot.left + ci * cellWidth + 0.5, y: plot.top + ri * cellHeight + 0.5, width: cellWidth - 1, height: cellHeight - 1 },
        marks,
      );
      title(cell, `${r}, ${columnFormat(c)}: ${format(isValue(v) ? v : 0)}`);
      cells.push(cell);
      // The count is written in the cell too: the light levels alone are hard to tell apart.
      if (isValue(v) && v > 0 && cellWidth >= 18) {
        const text = svgElement(
          "text",
          { class: `cell-value ${level(v) >= 4 ? "on-dark" : ""}`, x: plot.left + (ci + 0.5) * cellWidth, y: plot.top + ri * cellHeight + 17, "text-anchor": "middle", "aria-hidden": "true" },
          marks,
        );
        text.textContent = spec.cellFormat ? spec.cellFormat(v) : numberFormat.format(v);
      }
    });
  });
  const show = (i) => {
    cells.forEach((cell, j) => cell.classList.toggle("active", i === j));
    const ri = Math.floor(i / columns.length);
    const ci = i % columns.length;
    const v = values[ri][ci];
    readout.classList.remove("hint");
    readout.textContent = `${rows[ri]}, ${columnFormat(columns[ci])}: ${format(isValue(v) ? v : 0)}`;
  };
  const move = navigate(svg, cells.length, show, { rows: rows.length, columns: columns.length });
  cells.forEach((cell, i) => cell.addEventListener("pointerenter", () => move(i)));
  figure.setAttribute("data-points", points);
  const legend = htmlElement("p", { class: "heat-legend", "aria-hidden": "true" }, figure);
  legend.appendChild(document.createTextNode("fewer "));
  for (let l = 0; l <= HEAT_LEVELS; l++) htmlElement("span", { class: `swatch h${l}` }, legend);
  legend.appendChild(document.createTextNode(" more"));
  finish(parts, spec, null, {
    head: [spec.rowName || "", ...columns.map(columnFormat)],
    rows: rows.map((r, ri) => [r, ...columns.map((_, ci) => format(isValue(values[ri][ci]) ? values[ri][ci] : 0))]),
  });
  return figure;
}
