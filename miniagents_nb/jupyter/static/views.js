// miniagents_nb live views: a message sequence, an agent call tree, a token stream (an anywidget ES module).
//
// The state and the deltas follow the protocol of shared.js, which is put in front of this module (and timeline.js,
// which draws the timeline of the calls).

const { modelState, forget } = deltaProtocol({
  registry: (globalThis.__miniagentsNbViewStates ??= new Map()),
  what: "a view",
  prepare: stamp,
  applyExtra(data, delta) {
    const now = performance.now();
    for (const node of delta.nodes ?? []) {
      node._recv = now;
      data.nodes[node.id] = node;
    }
    if (delta.roots) data.roots = delta.roots;
    if ("superseded" in delta) data.superseded = delta.superseded;
    if ("clock" in delta) {
      data.clock = delta.clock;
      data._clockRecv = now;
    }
  },
});

function stamp(data) {
  const now = performance.now();
  for (const node of Object.values(data.nodes ?? {})) node._recv = now;
  data._clockRecv = now;
  return data;
}

// --- DOM ------------------------------------------------------------------------------------------------------

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

// `BOSS · 8 messages` (the status badge follows), `Message from BOSS`: header_title in _render.py.
function headerText(data) {
  if (data.kind === "message") {
    const sender = data.messages[0]?.sender;
    return sender ? `${data.title} from ${sender}` : data.title;
  }
  return `${data.title} · ${plural(data.messages.length, "message")}`;
}

function statusText(status, error) {
  return status === "failed" && error ? `failed: ${error}` : status;
}

// A re-run of the cell superseded what the view shows: SUPERSEDED_TEXT in _render.py.
const SUPERSEDED_TEXT = "superseded: its cell ran again";

function showSuperseded(parts, data) {
  parts.superseded.hidden = !data.superseded;
}

function messageView(message, labelled, index) {
  const el = h("div", `mna-message mna-status-${message.status}`);
  el.dataset.index = String(index);
  if (labelled && message.sender) el.appendChild(h("span", "mna-sender", message.sender));
  // a div, not a <pre>: JupyterLab's output rules for <pre> would break words anywhere
  const body = h("div", "mna-message-text");
  const text = document.createTextNode(message.text ?? "");
  body.appendChild(text);
  el.appendChild(body);
  const error = h("div", "mna-message-error");
  el.appendChild(error);
  const parts = { el, body, text, error };
  endMessage(parts, message);
  return parts;
}

function endMessage(parts, message) {
  parts.el.className = `mna-message mna-status-${message.status}`;
  parts.error.textContent = messageEndText(message);
  showImage(parts, message.image);
}

// --- a call's details: asked for when the user opens them, drawn as _details.py draws them ----------------------

function pairsView(className, pairs) {
  const dl = h("dl", className);
  for (const [name, value] of pairs) dl.append(h("dt", null, name), h("dd", null, value));
  return dl;
}

function messagesView(entries) {
  const ol = h("ol", "mna-details-messages");
  for (const entry of entries) {
    const li = h("li");
    li.appendChild(h("div", "mna-details-text", entry.text));
    if (entry.fields.length) li.appendChild(pairsView("mna-details-fields", entry.fields));
    ol.appendChild(li);
  }
  return ol;
}

function detailsView(details) {
  const body = h("div", "mna-details-body");
  if (!details) {
    body.textContent = "(this call is no longer known to the kernel)";
    return body;
  }
  const section = (title, content) => {
    const el = h("div", "mna-details-section");
    el.append(h("div", "mna-details-heading", title), content);
    body.appendChild(el);
  };
  if (details.times.length) section("Times", pairsView("mna-details-pairs", details.times));
  if (details.arguments.length) section("Arguments", pairsView("mna-details-pairs", details.arguments));
  section("Input", details.input.length ? messagesView(details.input) : h("i", null, "(no input)"));
  section("Replies", details.replies.length ? messagesView(details.replies) : h("i", null, "(none of its own: messages it passed on are shown under the calls that made them)"));
  if (details.error) section("Error", h("div", "mna-details-text mna-details-error", details.traceback ?? details.error));
  return body;
}

// view.details: id -> the details last received; view.opened: ids the user opened (kept across tree redraws)
function nodeDetails(id, view) {
  const el = h("details", "mna-node-details");
  el.dataset.id = id;
  el.appendChild(h("summary", null, "details"));
  el.appendChild(view.details.has(id) ? detailsView(view.details.get(id)) : h("div", "mna-details-body", "loading…"));
  el.open = view.opened.has(id);
  el.addEventListener("toggle", () => {
    if (el.open) {
      view.opened.add(id);
      view.request(id); // always fresh: a running call's replies grow
    } else view.opened.delete(id);
  });
  return el;
}

// --- the agent tree: one <details> per call (it folds without script, as the static form does), patched in place
// so a node the user opened or closed stays so while updates arrive. view.folded: id -> open, as the user left it.
const OPEN_DEPTH = 3; // deeper nodes start closed

function nodeSeconds(node, data) {
  // inclusive: from its start until it and its callees ended replying (counted up until the kernel knows it)
  const total = node.total ?? (node.started === null || node.started === undefined ? null : Math.max(0, liveClock(data) - node.started));
  if (total === null) return "";
  return node.self === null || node.self === undefined ? formatSeconds(total) : `${formatSeconds(total)} · self ${formatSeconds(node.self)}`;
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

function nodeEl(id, depth, view) {
  const li = h("li", "mna-node");
  const box = h("details", "mna-node-box");
  box.open = view.folded.has(id) ? view.folded.get(id) : depth < OPEN_DEPTH;
  box.addEventListener("toggle", () => view.folded.set(id, box.open));
  const line = h("summary", "mna-node-line");
  const parts = { li, box, line, id, depth };
  parts.kind = h("span", badgeClass("mna-node-kind", "tool"), "tool"); // a tool call's node (_tool_badge in _render.py)
  parts.alias = h("span", "mna-node-alias");
  parts.args = h("span", "mna-node-arguments");
  parts.status = h("span", "mna-node-status");
  parts.time = h("span", "mna-node-elapsed");
  parts.count = h("span", "mna-node-count");
  line.append(parts.kind, parts.alias, parts.args, parts.status, parts.time, parts.count);
  parts.error = h("div", "mna-node-error");
  parts.messages = h("ul", "mna-node-messages");
  parts.children = h("ul", "mna-tree-list");
  box.append(line, parts.error, nodeDetails(id, view), parts.messages, parts.children);
  li.appendChild(box);
  return parts;
}

// A tool call's name and arguments: filling in while the model writes them (_tool_arguments in _render.py).
function patchTool(parts, tool) {
  parts.kind.hidden = !tool;
  parts.args.hidden = !tool;
  if (!tool) return;
  const text = `(${tool.arguments})`;
  setText(parts.args, text);
  if (parts.args.title !== text) parts.args.title = text;
  parts.args.className = tool.streaming ? "mna-node-arguments mna-node-arguments-streaming" : "mna-node-arguments";
}

function patchNode(parts, node, data) {
  parts.li.className = `mna-node mna-status-${node.status}${node.tool ? " mna-node-tool" : ""}`;
  parts.li.dataset.status = node.status;
  parts.li.dataset.alias = node.alias;
  parts.li.dataset.id = parts.id;
  setText(parts.alias, node.alias);
  patchTool(parts, node.tool);
  parts.status.className = badgeClass("mna-node-status", node.status);
  setText(parts.status, statusText(node.status, null));
  setText(parts.time, nodeSeconds(node, data));
  setText(parts.count, node.message_count ? plural(node.message_count, "message") : "");
  setText(parts.error, node.error ?? "");
  parts.error.hidden = !node.error;
  const shown = JSON.stringify(node.messages);
  if (parts.shown !== shown) {
    parts.shown = shown;
    parts.messages.replaceChildren(...node.messages.map((text) => h("li", nodeMessageClass(text), text)));
  }
  parts.messages.hidden = !node.messages.length;
  parts.children.hidden = !node.children.some((child) => child in data.nodes);
}

// A tree line that refers to a message the list above shows starts with the model's LISTED_MARK
// (_tree_model.py): it carries its own marker, so it gets no "›" before it.
const LISTED_MARK = "\u2191 ";
function nodeMessageClass(text) {
  return text.startsWith(LISTED_MARK) ? "mna-node-message mna-listed" : "mna-node-message";
}

// view.nodes: id -> the parts of its element (kept while the view lives, so patches find them)
function patchTree(tree, data, view) {
  const seen = new Set();
  const place = (ul, ids, depth) => {
    let index = 0;
    for (const id of ids) {
      const node = data.nodes[id];
      if (!node || seen.has(id)) continue;
      seen.add(id);
      let parts = view.nodes.get(id);
      if (!parts) view.nodes.set(id, (parts = nodeEl(id, depth, view)));
      patchNode(parts, node, data);
      const at = ul.children[index] ?? null; // in call order, moving nothing already in place
      if (at !== parts.li) ul.insertBefore(parts.li, at);
      index += 1;
      place(parts.children, node.children, depth + 1);
    }
  };
  tree.none.remove();
  place(tree.list, data.roots, 0);
  if (!tree.list.children.length) tree.list.appendChild(tree.none);
}

function treeView(data, view) {
  const el = h("div", "mna-tree");
  el.appendChild(h("div", "mna-tree-title", "Agent calls"));
  const tree = { el, list: h("ul", "mna-tree-list"), none: h("li", "mna-node-none", "(no agent calls yet)") };
  el.appendChild(tree.list);
  view.nodes = new Map();
  patchTree(tree, data, view);
  return tree;
}

function build(root, data, view) {
  const parts = { messages: [], tree: null, timeline: null };
  const header = h("div", "mna-header");
  parts.title = h("span", "mna-title", headerText(data));
  parts.status = h("span", badgeClass("mna-view-status", data.status), statusText(data.status, data.error));
  parts.superseded = h("span", badgeClass("mna-view-superseded", "superseded"), SUPERSEDED_TEXT);
  showSuperseded(parts, data);
  header.append(parts.title, parts.status, parts.superseded);
  root.appendChild(header);
  if (data.show_messages) {
    parts.list = h("div", "mna-messages");
    for (const [index, message] of data.messages.entries()) {
      const view = messageView(message, data.kind === "sequence", index);
      parts.messages.push(view);
      parts.list.appendChild(view.el);
    }
    root.appendChild(parts.list);
  }
  if (data.show_tree) {
    parts.tree = treeView(data, view);
    root.appendChild(parts.tree.el);
  }
  if (data.show_tree || data.show_timeline) {
    parts.timeline = timelineView(data, view);
    root.appendChild(parts.timeline);
  }
  return parts;
}

function redrawTimeline(root, parts, data, view) {
  if (!parts.timeline) return;
  const timeline = timelineView(data, view);
  root.replaceChild(timeline, parts.timeline);
  parts.timeline = timeline;
}

function patch(root, parts, data, delta, view) {
  parts.title.textContent = headerText(data);
  parts.status.textContent = statusText(data.status, data.error);
  parts.status.className = badgeClass("mna-view-status", data.status);
  showSuperseded(parts, data);
  if (data.show_messages) {
    const created = new Set();
    for (const [index] of delta.new ?? []) {
      // built from `data`, where applyDelta already appended this delta's chunks: do not append them twice
      const view = messageView(data.messages[index], data.kind === "sequence", index);
      parts.messages[index] = view;
      parts.list.appendChild(view.el);
      created.add(index);
    }
    for (const [index, chunk] of delta.append ?? []) {
      if (!created.has(index)) parts.messages[index]?.text.appendData(chunk);
    }
    for (const [index, update] of delta.end ?? []) {
      const view = parts.messages[index];
      if (!view) continue;
      if (update.text !== undefined) view.text.data = update.text;
      endMessage(view, data.messages[index]);
    }
  }
  if (data.show_tree && (delta.nodes || delta.roots)) patchTree(parts.tree, data, view);
  if (delta.nodes || delta.roots || "clock" in delta) redrawTimeline(root, parts, data, view);
}

function render({ model, el }) {
  const st = modelState(model);
  const root = h("div", "mna-view");
  root.dataset.kind = st.data?.kind ?? "";
  el.appendChild(root);
  let parts = null;
  const view = {
    zoom: 1,
    timeline: Boolean(st.data?.show_timeline),
    details: new Map(),
    opened: new Set(),
    folded: new Map(),
    nodes: new Map(),
    request: (id) => model.send({ type: "details", id }),
  };
  const onDetails = (msg) => {
    if (!msg || msg.type !== "details") return;
    view.details.set(msg.id, msg.details);
    for (const el of root.querySelectorAll(".mna-node-details")) {
      if (el.dataset.id === msg.id) el.replaceChild(detailsView(msg.details), el.lastChild);
    }
  };
  model.on("msg:custom", onDetails);
  const full = () => {
    root.replaceChildren();
    if (st.data) parts = build(root, st.data, view);
  };
  const update = (delta) => {
    if (delta === null || parts === null) full();
    else patch(root, parts, st.data, delta, view);
  };
  full();
  st.listeners.add(update);
  let ticks = 0;
  const timer = setInterval(() => {
    if (!parts) return;
    for (const nodeParts of parts.tree ? view.nodes.values() : []) {
      const node = st.data.nodes[nodeParts.id];
      if (node && node.total === null && node.started !== null) setText(nodeParts.time, nodeSeconds(node, st.data));
    }
    ticks += 1;
    const running = Object.values(st.data?.nodes ?? {}).some((node) => node.ended === null);
    if (running && view.timeline && ticks % 3 === 0) redrawTimeline(root, parts, st.data, view); // bars grow
  }, 100);
  return () => {
    st.listeners.delete(update);
    model.off("msg:custom", onDetails);
    clearInterval(timer);
  };
}

export default {
  initialize({ model }) {
    const uid = model.get("uid");
    modelState(model);
    const unkeep = keepSavedForm(model); // static/saving.js
    return () => {
      unkeep();
      forget(uid);
    };
  },
  render,
};
