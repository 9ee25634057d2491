"""The settings as the page shows them, read off the DOM the way a user reads them.

Browser tests assert on what is on the page, not on the page's internals (`window.__playground`
is for setting up states the page offers no control for). `shown(page)` gives one dict with the
value of every control that carries `data-prop` (numbers as numbers, empty as None, check boxes
as booleans), the picked data set (the thumbnail marked aria-checked), the ticked input features
in their order, and each layer card's type and fields (`data-field`).
"""

from __future__ import annotations

SHOWN = """() => {
  const value = (el) => {
    if (el.type === 'checkbox') return el.checked;
    if (el.type === 'number' || el.type === 'range') {
      return el.value === '' ? null : Number(el.value);
    }
    return el.tagName === 'SELECT' && el.value === '' ? null : el.value;
  };
  const shown = {};
  for (const el of document.querySelectorAll('[data-prop]')) shown[el.dataset.prop] = value(el);
  const picked = document.querySelector('.thumb[aria-checked="true"]');
  shown.dataset = picked ? picked.dataset.name : null;
  shown.features = [...document.querySelectorAll('#features label')]
    .filter((label) => label.querySelector('input').checked)
    .map((label) => label.textContent.trim());
  shown.layers = [...document.querySelectorAll('.layer-card')].map((card) => {
    const layer = {type: card.querySelector('select[id$="-type"]').value};
    for (const el of card.querySelectorAll('[data-field]')) layer[el.dataset.field] = value(el);
    return layer;
  });
  return shown;
}"""


def shown(page) -> dict:
    """Every setting the page shows (see the module docstring)."""
    return page.evaluate(SHOWN)


def shown_layers(page, *fields: str) -> list[dict]:
    """Each layer card's type and the given fields (those it has)."""
    return [{k: v for k, v in layer.items() if k == "type" or k in fields}
            for layer in shown(page)["layers"]]


def more_settings(page) -> None:
    """Open "More settings" (the compact top bar keeps the rest of the controls there)."""
    if page.get_attribute("#more-settings-toggle", "aria-expanded") != "true":
        page.click("#more-settings-toggle")
