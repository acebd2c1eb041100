// What a notebook saved while a view is live keeps in the view's place (JupyterLab; elsewhere this does nothing).
//
// A saved notebook has no widget model once its kernel is gone, and JupyterLab then shows "Error displaying widget:
// model not found" instead of the text/html beside the widget. The kernel keeps the trait `saved_form` up to date
// with the static forms of what the view has so far, marked incomplete (jupyter/_saved_form.py). Here:
// * while JupyterLab saves the notebook, the widget's output holds that form (it is put back right after);
// * when the kernel goes away before the view was final (it died or restarts) or the widget model is closed, the
//   output keeps that form for good, so the page and any later save show what the view had.
// A final view's outputs hold its final forms already (the kernel replaced them): nothing is done for it then.

const WIDGET_MIME = "application/vnd.jupyter.widget-view+json";

function keepSavedForm(model) {
  const manager = model.widget_manager;
  const context = manager?.context;
  if (!context?.saveState?.connect || !context.model?.cells || typeof manager.get_model !== "function") {
    return () => {};
  }
  const uid = model.get("uid");
  let modelId = null;

  // The outputs showing this widget: [outputs, index] pairs (the id of our model is found once, by its uid).
  const widgetOutputs = () => {
    const found = [];
    const cells = context.model.cells;
    for (let c = 0; c < cells.length; c++) {
      const outputs = cells.get(c).outputs;
      if (!outputs) continue;
      for (let i = 0; i < outputs.length; i++) {
        const id = outputs.get(i).data?.[WIDGET_MIME]?.model_id;
        if (id && id === modelId) found.push([outputs, i]);
      }
    }
    return found;
  };
  const findModelId = async () => {
    if (modelId !== null) return;
    const cells = context.model.cells;
    for (let c = 0; c < cells.length; c++) {
      const outputs = cells.get(c).outputs;
      for (let i = 0; outputs && i < outputs.length; i++) {
        const id = outputs.get(i).data?.[WIDGET_MIME]?.model_id;
        if (!id) continue;
        try {
          if ((await manager.get_model(id)).get("uid") === uid) modelId = id;
        } catch {
          // a widget of a kernel that is gone: not ours
        }
        if (modelId !== null) return;
      }
    }
  };
  const staticOutput = () => {
    const form = model.get("saved_form");
    return form && form["text/html"] ? { output_type: "display_data", data: form, metadata: {} } : null;
  };

  let swapped = [];
  const onSave = (_context, phase) => {
    if (phase === "started") {
      const replacement = staticOutput();
      if (!replacement) return;
      for (const [outputs, index] of widgetOutputs()) {
        const original = outputs.get(index).toJSON();
        outputs.set(index, replacement);
        swapped.push([outputs, index, original, outputs.get(index)]);
      }
      return;
    }
    // "completed" or "failed": the widget goes back where it was (unless the kernel replaced the output since)
    const clean = phase === "completed" && !context.model.dirty;
    for (const [outputs, index, original, placed] of swapped) {
      if (outputs.length > index && outputs.get(index) === placed) outputs.set(index, original);
    }
    if (swapped.length && clean) context.model.dirty = false; // what was saved is what the page shows
    swapped = [];
  };
  const onFormChange = () => void findModelId();
  const onGone = () => {
    const replacement = staticOutput(); // emptied once final: then there is nothing to keep
    if (replacement) for (const [outputs, index] of widgetOutputs()) outputs.set(index, replacement);
  };
  // A kernel that died is restarted by the server ("autorestarting"): the widget models stay on the page, frozen.
  const onKernelStatus = (_session, status) => {
    if (status === "autorestarting" || status === "restarting" || status === "dead") onGone();
  };
  const session = context.sessionContext;
  context.saveState.connect(onSave);
  session?.statusChanged?.connect(onKernelStatus);
  model.on("change:saved_form", onFormChange);
  model.on("destroy", onGone);
  return () => {
    context.saveState.disconnect(onSave);
    session?.statusChanged?.disconnect(onKernelStatus);
    model.off("change:saved_form", onFormChange);
    model.off("destroy", onGone);
  };
}
