// DOM building helpers: every text goes in as a text node, never parsed as HTML.
import { t } from './i18n.js';

/**
 * Creates `<tag>` with `props` and `children`. Props: `class`, `text`, `dataset` (an object),
 * `on` (event name → listener), anything else an attribute (skipped when null, undefined or
 * false; `true` sets it empty). Children: nodes, or strings and numbers (text nodes); null,
 * undefined and false are skipped; arrays are flattened.
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name === 'text') node.textContent = String(value);
    else if (name === 'dataset') Object.assign(node.dataset, value);
    else if (name === 'on') for (const [event, listener] of Object.entries(value)) node.addEventListener(event, listener);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(typeof child === 'string' || typeof child === 'number' ? String(child) : child);
  }
}

/** Replaces every child of `node` with `children` (same rules as `el`). */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** The element with id `id`; throws when the page lacks it (a bug in index.html). */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`the page has no #${id}`);
  return node;
}

/** A table row with one cell per item; a cell is a node or a text. */
export function row(props, cells) {
  return el('tr', props, ...cells.map((cell) => el('td', {}, cell)));
}

/** A full-width row telling the table is empty (or still loading). */
export function emptyRow(columns, text) {
  return el('tr', { class: 'empty' }, el('td', { colspan: columns, text }));
}

/** A Yes / No badge (green / red) in the current language. */
export function yesNoBadge(yes) {
  return el('span', { class: `badge ${yes ? 'ok' : 'bad'}`, text: yes ? t('common.yes') : t('common.no') });
}
