/**
 * The confusion matrix of a classifier over the test set: rows are the true class, columns the
 * predicted one; each cell shows its count, shaded by its share of the row. Draws `confusion`
 * (int32, (classes, classes)) of a snapshot. Never fetches.
 */

import { t } from "../i18n/index.js";
export class ConfusionView {
  constructor(root) {
    this.root = root;
    this.table = null;
    this.classNames = [];
  }

  setClasses(classNames) {
    this.classNames = classNames || [];
    this.table = null;
  }

  build(k) {
    this.root.textContent = "";
    const title = document.createElement("h3");
    title.textContent = t("page.confusion_title");
    const table = document.createElement("table");
    table.className = "confusion";
    const caption = document.createElement("caption");
    caption.textContent = t("page.confusion_caption");
    table.append(caption);
    const head = table.insertRow();
    head.append(document.createElement("th"));
    for (let c = 0; c < k; c++) {
      const th = document.createElement("th");
      th.textContent = this.classNames[c] ?? String(c);
      head.append(th);
    }
    this.cells = [];
    for (let r = 0; r < k; r++) {
      const row = table.insertRow();
      const th = document.createElement("th");
      th.textContent = this.classNames[r] ?? String(r);
      row.append(th);
      this.cells.push([...Array(k)].map(() => row.insertCell()));
    }
    this.root.append(title, table);
    this.table = table;
    this.k = k;
  }

  draw(array) {
    const [k, k2] = array.shape;
    if (k !== k2) throw new Error(`confusion view: expected a square matrix, got shape ${array.shape}`);
    if (!this.table || this.k !== k) this.build(k);
    for (let r = 0; r < k; r++) {
      let total = 0;
      for (let c = 0; c < k; c++) total += array.data[r * k + c];
      for (let c = 0; c < k; c++) {
        const n = array.data[r * k + c];
        const cell = this.cells[r][c];
        const share = total ? n / total : 0;
        cell.textContent = String(n);
        const hue = r === c ? "8,119,189" : "245,147,34";
        cell.style.background = `rgba(${hue},${(0.85 * share).toFixed(3)})`;
        cell.style.color = share > 0.6 ? "#fff" : "";
      }
    }
  }
}
