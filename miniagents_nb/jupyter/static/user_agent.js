// miniagents_nb notebook chat: the user's side of a dialog (an anywidget ES module).
//
// The transcript follows the protocol of shared.js (put in front of this module): the full state in the
// synced traits `state` / `version`, coalesced deltas {type: "delta", from, to, new, append, end, chat, status,
// error} in between, each applied exactly once on top of the version it was made from.
//
// The user's text goes to the kernel as {type: "send", text, turn}: `turn` names the input request it answers, so
// a second Enter before the kernel moved on is dropped there. Stop sends {type: "stop"}. Keys typed in the text box
// stay in it (JupyterLab's notebook shortcuts never see them): Enter sends, Shift+Enter is a new line.

const { modelState, forget } = deltaProtocol({
  registry: (globalThis.__miniagentsNbChatStates ??= new Map()),
  what: "a chat",
  applyExtra(data, delta) {
    if (delta.chat) data.chat = delta.chat;
  },
  initial: { sentTurn: -1 },
});
const FINAL = new Set(["ended", "done", "failed", "cancelled"]);
const STATUS_WORDS = {
  running: "running",
  waiting: "your turn",
  ended: "ended",
  done: "done",
  failed: "failed",
  cancelled: "cancelled",
};

// --- DOM ------------------------------------------------------------------------------------------------------

function messageView(message, index) {
  const el = h("div", "mna-chat-message");
  el.dataset.index = String(index);
  el.dataset.role = message.role ?? "assistant";
  el.appendChild(h("div", "mna-chat-sender", message.sender ?? ""));
  const body = h("div", "mna-chat-text");
  const text = document.createTextNode(message.text ?? "");
  body.appendChild(text);
  el.appendChild(body);
  const error = h("div", "mna-chat-error");
  el.appendChild(error);
  const parts = { el, body, text, error };
  endMessage(parts, message);
  return parts;
}

function endMessage(parts, message) {
  parts.el.dataset.status = message.status;
  parts.error.textContent = messageEndText(message);
  showImage(parts, message.image); // an image message (e.g. a chart an agent answers with) shows its image
}

function render({ model, el }) {
  const st = modelState(model);
  const root = h("div", "mna-chat");
  el.appendChild(root);

  const header = h("div", "mna-chat-header");
  const title = h("span", "mna-chat-title");
  const status = h("span", "mna-chat-status");
  header.append(title, status);
  const greeting = h("div", "mna-chat-greeting");
  const log = h("div", "mna-chat-log");
  const notice = h("div", "mna-chat-notice");
  const row = h("div", "mna-chat-inputrow");
  row.dataset.lmSuppressShortcuts = "true";
  const input = h("textarea", "mna-chat-input");
  input.rows = 2;
  const send = h("button", "mna-chat-send", "Send");
  const stop = h("button", "mna-chat-stop", "Stop");
  send.type = stop.type = "button";
  const buttons = h("div", "mna-chat-buttons");
  buttons.append(send, stop);
  row.append(input, buttons);
  root.append(header, greeting, log, notice, row);

  let views = [];
  let refocus = false;

  const nearBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  const toBottom = () => {
    log.scrollTop = log.scrollHeight;
  };

  const controls = () => {
    const data = st.data;
    if (!data) return;
    const final = FINAL.has(data.status);
    const turn = data.chat?.turn ?? 0;
    const waiting = data.status === "waiting" && st.sentTurn !== turn;
    root.dataset.status = data.status;
    title.textContent = data.title;
    status.textContent = data.status === "failed" && data.error ? `failed: ${data.error}` : STATUS_WORDS[data.status] ?? data.status;
    status.className = badgeClass("mna-chat-status", data.status);
    notice.textContent = data.chat?.notice ?? "";
    row.hidden = data.takes_input === false; // a %%chat exchange: a transcript, the cell is where one types
    input.disabled = final;
    input.placeholder = final ? "The chat has ended." : data.placeholder ?? "";
    send.disabled = !waiting;
    stop.disabled = final;
    if (waiting && refocus) {
      refocus = false;
      input.focus({ preventScroll: true });
    }
  };

  const full = () => {
    const data = st.data;
    log.replaceChildren();
    views = [];
    if (!data) return;
    greeting.textContent = data.greeting ?? "";
    for (const [index, message] of data.messages.entries()) {
      const view = messageView(message, index);
      views[index] = view;
      log.appendChild(view.el);
    }
    controls();
    toBottom();
  };

  const update = (delta) => {
    if (delta === null || !st.data) {
      full();
      return;
    }
    const follow = nearBottom();
    // A message new in this delta is drawn from the state, which has this delta's text applied already.
    const fresh = new Set();
    for (const [index] of delta.new ?? []) {
      const view = messageView(st.data.messages[index], index);
      views[index] = view;
      fresh.add(index);
      log.appendChild(view.el);
    }
    for (const [index, chunk] of delta.append ?? []) if (!fresh.has(index)) views[index]?.text.appendData(chunk);
    for (const [index, change] of delta.end ?? []) {
      const view = views[index];
      if (!view) continue;
      if (change.text !== undefined) view.text.data = change.text;
      endMessage(view, st.data.messages[index]);
    }
    controls();
    if (follow) toBottom();
  };

  const submit = () => {
    const data = st.data;
    if (!data || data.status !== "waiting") return;
    const turn = data.chat?.turn ?? 0;
    const text = input.value;
    if (st.sentTurn === turn || !text.trim()) return; // blank input is ignored
    st.sentTurn = turn;
    model.send({ type: "send", text, turn });
    input.value = "";
    refocus = true;
    controls();
  };

  input.addEventListener("keydown", (event) => {
    event.stopPropagation(); // typing here never triggers notebook shortcuts (Shift+Enter would run the cell)
    if (event.key === "Enter" && !event.shiftKey && !event.altKey && !event.ctrlKey && !event.metaKey) {
      if (event.isComposing) return;
      event.preventDefault();
      submit();
    }
  });
  input.addEventListener("keyup", (event) => event.stopPropagation());
  send.addEventListener("click", submit);
  stop.addEventListener("click", () => {
    if (st.data && !FINAL.has(st.data.status)) model.send({ type: "stop" });
  });

  full();
  st.listeners.add(update);
  return () => st.listeners.delete(update);
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
