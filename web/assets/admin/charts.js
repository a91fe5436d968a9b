// Charts as inline SVG built with DOM calls: sizes and positions are SVG attributes, colours
// are CSS classes (no inline styles). Each chart is role=img with a title; the data tables next
// to the charts are their text alternatives.

const SVG_NS = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A round axis maximum (1, 2, 5 times a power of ten) at or above `value`. */
export function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

function chartFrame(id, title, description, width, height) {
  const titleId = `${id}-title`;
  const descId = `${id}-desc`;
  return svg(
    "svg",
    {
      id,
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      role: "img",
      "aria-labelledby": titleId,
      "aria-describedby": descId,
      preserveAspectRatio: "xMinYMin meet",
    },
    svg("title", { id: titleId }, title),
    svg("desc", { id: descId }, description),
  );
}

/**
 * Stacked bars: `rows` [{label, values: {series: n}}], `series` [{key, label}].
 * Bars get the class `bar-<key>`; a <title> on each segment names its value.
 */
export function stackedBarChart({ id, title, description, rows, series }) {
  const left = 40;
  const bottom = 40;
  const top = 10;
  const barGap = 4;
  const barWidth = Math.max(6, Math.min(28, Math.floor(720 / Math.max(rows.length, 1)) - barGap));
  const width = Math.max(320, left + rows.length * (barWidth + barGap) + 10);
  const height = 240;
  const plotHeight = height - top - bottom;
  const totals = rows.map((r) => series.reduce((sum, s) => sum + (r.values[s.key] || 0), 0));
  const max = niceMax(Math.max(0, ...totals));
  const y = (value) => top + plotHeight - (value / max) * plotHeight;
  const root = chartFrame(id, title, description, width, height);

  for (const tick of [0, max / 2, max]) {
    root.append(
      svg("line", { class: "grid-line", x1: left, x2: width - 5, y1: y(tick), y2: y(tick) }),
      svg("text", { class: "tick", x: left - 6, y: y(tick) + 4, "text-anchor": "end" }, formatTick(tick)),
    );
  }
  const labelEvery = Math.ceil(rows.length / 12);
  rows.forEach((row, index) => {
    const x = left + index * (barWidth + barGap) + barGap / 2;
    let base = 0;
    for (const s of series) {
      const value = row.values[s.key] || 0;
      if (!value) continue;
      root.append(
        svg(
          "rect",
          { class: `bar bar-${s.key}`, x, width: barWidth, y: y(base + value), height: y(base) - y(base + value) },
          svg("title", {}, `${row.label}: ${s.label} ${value}`),
        ),
      );
      base += value;
    }
    if (index % labelEvery === 0) {
      root.append(
        svg("text", { class: "tick", x: x + barWidth / 2, y: height - bottom + 16, "text-anchor": "middle" }, row.short),
      );
    }
  });
  root.append(
    svg("line", { class: "axis", x1: left, x2: width - 5, y1: y(0), y2: y(0) }),
    svg("line", { class: "axis", x1: left, x2: left, y1: top, y2: y(0) }),
  );
  return root;
}

function formatTick(value) {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

/**
 * A grid of cells (rows x columns), each shaded by its count (classes cell-0..cell-3) and
 * labelled with the number. `rows` [{label, cells: [n, ...]}], `columns` [label, ...].
 */
export function heatGrid({ id, title, description, rows, columns }) {
  const left = 170;
  const top = 28;
  const cell = 68;
  const rowHeight = 28;
  const width = left + columns.length * cell + 10;
  const height = top + rows.length * rowHeight + 6;
  const max = Math.max(1, ...rows.flatMap((r) => r.cells));
  const level = (n) => (n === 0 ? 0 : Math.min(3, Math.ceil((n / max) * 3)));
  const root = chartFrame(id, title, description, width, height);
  columns.forEach((label, c) => {
    root.append(
      svg("text", { class: "tick", x: left + c * cell + cell / 2, y: top - 10, "text-anchor": "middle" }, label),
    );
  });
  rows.forEach((row, r) => {
    const y = top + r * rowHeight;
    root.append(
      svg("text", { class: "tick", x: left - 8, y: y + rowHeight / 2 + 4, "text-anchor": "end" }, truncate(row.label, 26)),
    );
    row.cells.forEach((n, c) => {
      const x = left + c * cell;
      const shade = level(n);
      root.append(
        svg(
          "rect",
          { class: `cell cell-${shade}`, x: x + 1, y: y + 1, width: cell - 2, height: rowHeight - 2, rx: 3 },
          svg("title", {}, `${row.label}, ${columns[c]}: ${n}`),
        ),
        svg(
          "text",
          { class: shade === 3 ? "cell-text on-dark" : "cell-text", x: x + cell / 2, y: y + rowHeight / 2 + 4, "text-anchor": "middle" },
          String(n),
        ),
      );
    });
  });
  return root;
}

function truncate(text, length) {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}

/** A small square in a series' colour, for legends. */
export function swatch(className) {
  return svg(
    "svg",
    { viewBox: "0 0 10 10", "aria-hidden": "true", focusable: "false" },
    svg("rect", { class: className, x: 0, y: 0, width: 10, height: 10 }),
  );
}
