// What the live views and the chat widget share: the delta protocol and the DOM helpers. The Python side puts this
// file in front of each widget's own module (anywidget takes one ES module per widget, and there is no build step).
//
// --- the delta protocol ------------------------------------------------------------------------------------------
//
// The kernel sends the full state in the synced traits `state` / `version` (at creation and, once more, when the
// widget is final) and, in between, coalesced deltas as custom messages {type: "delta", from, to, ...}. A delta is
// applied only on top of the version it was made from: an early one waits for its base, a stale one (older than a
// trait state) is dropped, so reordering between trait updates and custom messages is harmless.
//
// The state is kept once per widget model, from `initialize` on (anywidget handles no message of a model before its
// `initialize` ran), in a registry on `globalThis` keyed by the model's `uid` trait: anywidget may hand `initialize`
// and `render` different module instances and model wrappers, so neither a module-level map nor the model object
// can be the key. A view rendered late, or twice, sees every delta. If a host never calls `initialize`, the first
// render starts the state, and a gap in the deltas asks the kernel for the full state once.

const RESYNC_AFTER_MS = 500;

function copy(value) {
  return JSON.parse(JSON.stringify(value ?? {}));
}

// registry: a Map on globalThis for one kind of widget; what: how errors name it; prepare(data): applied to a state
// taken from the traits; applyExtra(data, delta): the kind's own delta fields; initial: extra per-model fields.
function deltaProtocol({ registry, what, prepare = (data) => data, applyExtra = () => {}, initial = {} }) {
  function applyDelta(data, delta) {
    for (const [index, message] of delta.new ?? []) data.messages[index] = message;
    for (const [index, chunk] of delta.append ?? []) data.messages[index].text += chunk;
    for (const [index, update] of delta.end ?? []) Object.assign(data.messages[index], update);
    applyExtra(data, delta);
    if ("status" in delta) data.status = delta.status;
    if ("error" in delta) data.error = delta.error;
  }

  function emit(st, delta) {
    for (const listener of st.listeners) {
      try {
        listener(delta);
      } catch (error) {
        console.error(`[miniagents_nb] ${what} failed to update`, error); // the state itself stays right
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
    let st = registry.get(uid);
    if (st) return st;
    st = { version: -1, data: null, pending: new Map(), listeners: new Set(), resyncTimer: null, ...initial };
    registry.set(uid, st);
    const takeTraits = () => {
      const version = model.get("version");
      if (version < st.version) return;
      st.data = prepare(copy(model.get("state")));
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

  return { modelState, forget: (uid) => registry.delete(uid) };
}

// --- DOM helpers ---------------------------------------------------------------------------------------------------

// An element with a class and a text (text only: untrusted text never becomes markup).
function h(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined && text !== null) el.textContent = text;
  return el;
}

// The status badge classes (colours in shared.css) plus the widget's own class for its place.
function badgeClass(own, status) {
  return `${own} mna-badge mna-badge-${status}`;
}

// What a message shows under its text when it did not end well ("" when it did).
function messageEndText(message) {
  if (message.status === "failed") return message.error ?? "failed";
  if (message.status === "cancelled") return "cancelled";
  return "";
}

// An image message's image: only a base64 data: URL of a raster type (_images.py decides, this checks again).
const IMAGE_SOURCE = /^data:image\/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/]*={0,2}$/;

// `parts.body` is the element the image goes under (the message's text box); shown once per message.
function showImage(parts, image) {
  if (!image || parts.image || !IMAGE_SOURCE.test(image.src ?? "")) return;
  parts.image = h("img", "mna-message-image");
  parts.image.alt = image.alt ?? "";
  parts.image.src = image.src;
  parts.body.appendChild(parts.image);
}
