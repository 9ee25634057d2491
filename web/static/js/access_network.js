/**
 * The network diagram's neurons for the keyboard and assistive technology: a hidden or output
 * neuron (which opens its enlarged heatmap, or the inspector, on click) is a button there too:
 * role "button", Space and Enter act as a click. Input features keep their own switch role and
 * keys (views/network.js). Used by access.js (the playground) and access_view.js (the job view).
 */

/** Watch `root` (the #network element): neurons drawn now and later get the role and keys. */
export function bindNetworkAccess(root) {
  if (!root) return;
  const roles = () => {
    for (const el of root.querySelectorAll(".neuron:not(.input):not([role])")) el.setAttribute("role", "button");
  };
  new MutationObserver(roles).observe(root, { childList: true, subtree: true });
  roles();
  root.addEventListener("keydown", (e) => {
    const neuron = e.target.closest?.(".neuron");
    if (!neuron || neuron.classList.contains("input") || e.ctrlKey || e.metaKey || e.altKey) return;
    // Hidden neurons answer Enter themselves; Space, and Enter on an output neuron, click here.
    if (e.key === " " || (e.key === "Enter" && neuron.classList.contains("output"))) {
      e.preventDefault();
      e.stopPropagation();
      neuron.click();
    }
  });
}
