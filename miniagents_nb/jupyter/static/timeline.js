// The timeline of a view's agent calls: one lane per call, queued -> started -> ended, message marks and token
// ticks; the same DOM as the static form (_timeline.py), placed in percent of the run's span. Put in front of
// views.js (after shared.js).
//
// Times are seconds since the first call was queued. While a call runs, its bar grows with the kernel's clock,
// which the front end counts up from the last update (`clock` at `_recv`).

const LANE_INDENT_PX = 12;
const MAX_ZOOM = 64;
const AXIS_STEPS = 4; // about this many time labels on the axis (the title says the whole span)
const NICE_STEPS = [1, 2, 2.5, 5, 10];
const MINUTE_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 240, 480, 720, 1440];
const AXIS_END_GAP = 0.92; // no label past this share of the span: its text would run over the end of the axis

function formatSeconds(seconds) {
  if (seconds < 10) return seconds < 1 ? `${seconds.toFixed(3)} s` : `${seconds.toFixed(2)} s`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  return `${Math.floor(seconds / 60)} min ${(seconds % 60).toFixed(0)} s`;
}

// Round times from 0, [seconds, text] each, none too close to the end: axis_ticks in _timeline.py does the same.
function axisTicks(span) {
  if (!(span > 0)) return [[0, "0 s"]];
  const raw = span / AXIS_STEPS;
  let unit, scale, step;
  if (raw >= 60) {
    [unit, scale] = ["min", 60];
    step = MINUTE_STEPS.find((minutes) => minutes >= raw / scale) ?? Math.ceil(raw / 86400) * 1440;
  } else {
    [unit, scale] = raw < 0.001 ? ["ms", 0.001] : ["s", 1];
    const power = 10 ** Math.floor(Math.log10(raw / scale));
    step = NICE_STEPS.map((factor) => factor * power).find((value) => value >= (raw / scale) * (1 - 1e-9));
  }
  let decimals = 0;
  while (decimals < 11 && Math.abs(Number(step.toFixed(decimals)) - step) >= step * 1e-6) decimals++;
  const ticks = [[0, `${(0).toFixed(decimals)} ${unit}`]];
  for (let index = 1; index * step * scale < span * AXIS_END_GAP; index++) {
    ticks.push([index * step * scale, `${(index * step).toFixed(decimals)} ${unit}`]);
  }
  return ticks;
}

function timelineLanes(data) {
  const lanes = [];
  const walk = (id, depth) => {
    const node = data.nodes[id];
    lanes.push([depth, node]);
    for (const child of node.children) if (child in data.nodes) walk(child, depth + 1);
  };
  for (const root of data.roots) if (root in data.nodes) walk(root, 0);
  return lanes;
}

function laneSummary(node) {
  const parts = [node.alias, node.status, `queued at ${formatSeconds(node.queued ?? 0)}`];
  if (node.started !== null && node.started !== undefined) parts.push(`started at ${formatSeconds(node.started)}`);
  if (node.ended !== null && node.ended !== undefined) parts.push(`ended at ${formatSeconds(node.ended)}`);
  if (node.elapsed !== null && node.elapsed !== undefined) parts.push(`ran ${formatSeconds(node.elapsed)}`);
  if (node.ttft !== null && node.ttft !== undefined) parts.push(`first token after ${formatSeconds(node.ttft)}`);
  if (node.message_count) parts.push(plural(node.message_count, "message"));
  return parts.join(" · ");
}

// The kernel's clock now, as far as the front end can tell (exact once every call ended).
function liveClock(data) {
  if (data.clock === null || data.clock === undefined) return 0;
  const running = Object.values(data.nodes).some((node) => node.ended === null || node.ended === undefined);
  return data.clock + (running && data._clockRecv ? (performance.now() - data._clockRecv) / 1000 : 0);
}

function timelineSpan(data, lanes, now) {
  let span = Math.max(now, 0.001);
  for (const [, node] of lanes) {
    for (const t of [node.queued, node.started, node.ended, ...(node.marks ?? []), ...(node.ticks ?? [])]) {
      if (t !== null && t !== undefined) span = Math.max(span, t);
    }
  }
  return span;
}

function pct(seconds, span) {
  return `${((100 * Math.min(Math.max(seconds, 0), span)) / span).toFixed(2)}%`;
}

function box(className, start, end, span) {
  const el = h("div", className);
  el.style.left = pct(start, span);
  el.style.width = pct(Math.max(end - start, 0), span);
  return el;
}

function laneTrack(node, span, now) {
  const lane = h("div", `mna-lane mna-status-${node.status}`);
  lane.dataset.alias = node.alias;
  lane.dataset.status = node.status;
  lane.title = laneSummary(node);
  const queued = node.queued ?? 0;
  const ended = node.ended ?? now;
  const total = node.total ?? (node.started !== null && node.started !== undefined ? now - node.started : null);
  if (total !== null && total > (node.elapsed ?? 0)) {
    lane.appendChild(box("mna-lane-span", node.started, node.started + total, span)); // waiting for its callees
  }
  if (node.started === null || node.started === undefined) {
    lane.appendChild(box("mna-lane-wait", queued, ended, span));
  } else {
    lane.appendChild(box("mna-lane-wait", queued, node.started, span));
    lane.appendChild(box(`mna-lane-bar mna-badge mna-badge-${node.status}`, node.started, ended, span));
  }
  for (const [kind, times] of [
    ["mna-lane-tick", node.ticks ?? []],
    ["mna-lane-mark", node.marks ?? []],
  ]) {
    for (const t of times) {
      const mark = h("span", kind);
      mark.style.left = pct(t, span);
      lane.appendChild(mark);
    }
  }
  return lane;
}

function laneDuration(node, now) {
  if (node.total !== null && node.total !== undefined) return node.total;
  if (node.started === null || node.started === undefined) return null;
  return Math.max((node.ended ?? now) - node.started, 0);
}

// view: {zoom} kept by the caller across rebuilds, so that zooming survives updates.
function timelineView(data, view) {
  const now = liveClock(data);
  const lanes = timelineLanes(data);
  const span = timelineSpan(data, lanes, now);
  // a <details> element, as in the static form: under a tree it starts closed and opens with no script
  const box_ = h("details", "mna-timeline");
  box_.open = view.timeline;
  box_.addEventListener("toggle", () => {
    view.timeline = box_.open;
  });
  const title = h("summary", "mna-timeline-title", "Timeline ");
  title.appendChild(h("span", "mna-timeline-span", formatSeconds(span)));
  const zoom = h("span", "mna-timeline-zoom");
  for (const [label, factor, hint] of [
    ["−", 0.5, "zoom out"],
    ["+", 2, "zoom in"],
    ["fit", 0, "fit the whole run"],
  ]) {
    const button = h("button", "mna-timeline-button", label);
    button.type = "button";
    button.title = hint;
    button.addEventListener("click", (event) => {
      event.preventDefault(); // inside <summary>: a click must not close the timeline
      view.zoom = factor === 0 ? 1 : Math.min(Math.max(view.zoom * factor, 1), MAX_ZOOM);
      tracks.style.width = `${100 * view.zoom}%`;
    });
    zoom.appendChild(button);
  }
  title.appendChild(zoom);
  box_.appendChild(title);
  const body = h("div", "mna-timeline-body");
  const labels = h("div", "mna-timeline-labels");
  const scroll = h("div", "mna-timeline-scroll");
  const tracks = h("div", "mna-timeline-tracks");
  tracks.style.width = `${100 * view.zoom}%`;
  const axis = h("div", "mna-timeline-axis");
  for (const [at, text] of axisTicks(span)) {
    const label = h("span", "mna-axis-label", text);
    label.style.left = pct(at, span);
    axis.appendChild(label);
  }
  tracks.appendChild(axis);
  labels.appendChild(h("div", "mna-lane-label mna-axis-spacer"));
  for (const [depth, node] of lanes) {
    const label = h("div", "mna-lane-label");
    label.style.paddingLeft = `${depth * LANE_INDENT_PX}px`;
    label.title = laneSummary(node);
    label.appendChild(h("span", "mna-lane-alias", node.alias));
    const duration = laneDuration(node, now);
    if (duration !== null) label.appendChild(h("span", "mna-lane-time", formatSeconds(duration)));
    labels.appendChild(label);
    tracks.appendChild(laneTrack(node, span, now));
  }
  if (!lanes.length) labels.appendChild(h("div", "mna-lane-label mna-lane-none", "(no agent calls yet)"));
  scroll.appendChild(tracks);
  body.append(labels, scroll);
  box_.appendChild(body);
  return box_;
}
