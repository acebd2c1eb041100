// miniagents_nb live views: a message sequence, an agent call tree, a token stream (an anywidget ES module).
//
// The kernel sends the full state in the synced traits `state` / `version` (at creation and, once more, when the
// view is final) and, in between, coalesced deltas as custom messages {type: "delta", from, to, ...}. A delta is
// applied only on top of the version it was made from: an early one waits for its base, a stale one (older than a
// trait state) is dropped, so reordering between trait updates and custom messages is harmless.
//
// The state is kept once per widget model, from `initialize` on (anywidget handles no message of a model before its
// `initialize` ran), in a registry on `globalThis` keyed by the model's `uid` trait: anywidget may hand `initialize`
// and `render` different module instances and model wrappers, so neither a module-level map nor the model object
// can be the key. A view rendered late, or twice, sees every delta. If a host never calls `initialize`, the first
// render starts the state, and a gap in the deltas asks the kernel for the full state once.

const REGISTRY = (globalThis.__miniagentsNbViewStates ??= new Map());
const RESYNC_AFTER_MS = 500;

function copy(value) {
  return JSON.parse(JSON.stringify(value ?? {}));
}

function stamp(data) {
  const now = performance.now();
  for (const node of Object.values(data.nodes ?? {})) node._recv = now;
  return data;
}

function applyDelta(data, delta) {
  for (const [index, message] of delta.new ?? []) data.messages[index] = message;
  for (const [index, chunk] of delta.append ?? []) data.messages[index].text += chunk;
  for (const [index, update] of delta.end ?? []) Object.assign(data.messages[index], update);
  const now = performance.now();
  for (const node of delta.nodes ?? []) {
    node._recv = now;
    data.nodes[node.id] = node;
  }
  if (delta.roots) data.roots = delta.roots;
  if ("status" in delta) data.status = delta.status;
  if ("error" in delta) data.error = delta.error;
}

function emit(st, delta) {
  for (const listener of st.listeners) {
    try {
      listener(delta);
    } catch (error) {
      console.error("[miniagents_nb] a view failed to update", error); // the state itself stays right
    }
  }
}

function drain(st) {
  let delta;
  while ((delta = st.pending.get(st.version)) !== undefined) {
    st.pending.delete(st.version);
    applyDelta(st.data, delta);
    st.version = delta.to;
    emit(st, delta);
  }
}

function modelState(model) {
  const uid = model.get("uid");
  let st = REGISTRY.get(uid);
  if (st) return st;
  st = { version: -1, data: null, pending: new Map(), listeners: new Set(), resyncTimer: null };
  REGISTRY.set(uid, st);
  const takeTraits = () => {
    const version = model.get("version");
    if (version < st.version) return;
    st.data = stamp(copy(model.get("state")));
    st.version = version;
    for (const from of [...st.pending.keys()]) if (from < version) st.pending.delete(from);
    emit(st, null);
    drain(st);
  };
  takeTraits();
  model.on("change:version", takeTraits);
  model.on("msg:custom", (msg) => {
    if (!msg || msg.type !== "delta" || msg.to <= st.version) return;
    st.pending.set(msg.from, msg);
    drain(st);
    if (st.pending.size && st.resyncTimer === null) {
      // a delta came without the ones before it: if they do not show up soon, ask for the whole state
      st.resyncTimer = setTimeout(() => {
        st.resyncTimer = null;
        if (st.pending.size) model.send({ type: "resync" });
      }, RESYNC_AFTER_MS);
    }
  });
  return st;
}

// --- DOM ------------------------------------------------------------------------------------------------------

function h(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined && text !== null) el.textContent = text;
  return el;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function headerText(data) {
  if (data.kind === "message") return data.title;
  return `${data.title} · ${plural(data.messages.length, "message")}`;
}

function statusText(status, error) {
  return status === "failed" && error ? `failed: ${error}` : status;
}

function messageView(message, labelled, index) {
  const el = h("div", `mna-message mna-status-${message.status}`);
  el.dataset.index = String(index);
  if (labelled && message.sender) el.appendChild(h("span", "mna-sender", message.sender));
  const pre = h("pre", "mna-message-text");
  const text = document.createTextNode(message.text ?? "");
  pre.appendChild(text);
  el.appendChild(pre);
  const error = h("div", "mna-message-error");
  el.appendChild(error);
  const parts = { el, text, error };
  endMessage(parts, message);
  return parts;
}

function endMessage(parts, message) {
  parts.el.className = `mna-message mna-status-${message.status}`;
  if (message.status === "failed") parts.error.textContent = message.error ?? "failed";
  else if (message.status === "cancelled") parts.error.textContent = "cancelled";
  else parts.error.textContent = "";
}

function formatElapsed(seconds) {
  if (seconds === null || seconds === undefined) return "";
  return seconds < 60 ? `${seconds.toFixed(1)} s` : `${Math.floor(seconds / 60)} min ${(seconds % 60).toFixed(0)} s`;
}

function nodeElapsed(node) {
  if (node.elapsed === null || node.elapsed === undefined) return null;
  const running = node.status === "running";
  return node.elapsed + (running ? (performance.now() - (node._recv ?? performance.now())) / 1000 : 0);
}

function treeView(data, elapsedEls) {
  const box = h("div", "mna-tree");
  box.appendChild(h("div", "mna-tree-title", "Agent calls"));
  const list = h("ul", "mna-tree-list");
  const item = (id) => {
    const node = data.nodes[id];
    const li = h("li", `mna-node mna-status-${node.status}`);
    li.dataset.status = node.status;
    li.dataset.alias = node.alias;
    const line = h("div", "mna-node-line");
    line.appendChild(h("span", "mna-node-alias", node.alias));
    line.appendChild(h("span", `mna-node-status mna-badge-${node.status}`, statusText(node.status, null)));
    const elapsed = h("span", "mna-node-elapsed", formatElapsed(nodeElapsed(node)));
    elapsedEls.push([elapsed, node]);
    line.appendChild(elapsed);
    if (node.message_count) line.appendChild(h("span", "mna-node-count", plural(node.message_count, "message")));
    li.appendChild(line);
    if (node.error) li.appendChild(h("div", "mna-node-error", node.error));
    if (node.messages.length) {
      const messages = h("ul", "mna-node-messages");
      for (const text of node.messages) messages.appendChild(h("li", "mna-node-message", text));
      li.appendChild(messages);
    }
    const children = node.children.filter((child) => child in data.nodes);
    if (children.length) {
      const ul = h("ul", "mna-tree-list");
      for (const child of children) ul.appendChild(item(child));
      li.appendChild(ul);
    }
    return li;
  };
  for (const root of data.roots) if (root in data.nodes) list.appendChild(item(root));
  if (!list.children.length) list.appendChild(h("li", "mna-node-none", "(no agent calls yet)"));
  box.appendChild(list);
  return box;
}

function build(root, data) {
  const parts = { messages: [], elapsedEls: [], tree: null };
  const header = h("div", "mna-header");
  parts.title = h("span", "mna-title", headerText(data));
  parts.status = h("span", `mna-view-status mna-badge-${data.status}`, statusText(data.status, data.error));
  header.append(parts.title, parts.status);
  if (data.kind === "message" && data.messages[0]?.sender) {
    header.appendChild(h("span", "mna-sender", data.messages[0].sender));
  }
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
    parts.tree = treeView(data, parts.elapsedEls);
    root.appendChild(parts.tree);
  }
  return parts;
}

function patch(root, parts, data, delta) {
  parts.title.textContent = headerText(data);
  parts.status.textContent = statusText(data.status, data.error);
  parts.status.className = `mna-view-status mna-badge-${data.status}`;
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
  if (data.show_tree && (delta.nodes || delta.roots)) {
    parts.elapsedEls = [];
    const tree = treeView(data, parts.elapsedEls);
    root.replaceChild(tree, parts.tree);
    parts.tree = tree;
  }
}

function render({ model, el }) {
  const st = modelState(model);
  const root = h("div", "mna-view");
  root.dataset.kind = st.data?.kind ?? "";
  el.appendChild(root);
  let parts = null;
  const full = () => {
    root.replaceChildren();
    if (st.data) parts = build(root, st.data);
  };
  const update = (delta) => {
    if (delta === null || parts === null) full();
    else patch(root, parts, st.data, delta);
  };
  full();
  st.listeners.add(update);
  const timer = setInterval(() => {
    if (!parts) return;
    for (const [span, node] of parts.elapsedEls) {
      if (node.status === "running") span.textContent = formatElapsed(nodeElapsed(node));
    }
  }, 100);
  return () => {
    st.listeners.delete(update);
    clearInterval(timer);
  };
}

export default {
  initialize({ model }) {
    const uid = model.get("uid");
    modelState(model);
    return () => REGISTRY.delete(uid);
  },
  render,
};
