// One colour per node id, kept for the page's life: a node keeps its colour while others come and go.
import { el } from './dom.js';

/** Distinct colours first (Tableau 10 and two more); past them, hues spread by the golden angle. */
const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#59a14f',
  '#e15759',
  '#76b7b2',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
  '#2f4b7c',
  '#a05195',
];

const assigned = new Map();

/** The colour of `nodeId`: the next free one the first time it is asked for, the same one after. */
export function colorOf(nodeId) {
  let color = assigned.get(nodeId);
  if (color === undefined) {
    const n = assigned.size;
    color = n < PALETTE.length ? PALETTE[n] : `hsl(${Math.round((n * 137.508) % 360)} 55% 55%)`;
    assigned.set(nodeId, color);
  }
  return color;
}

/** Gives colours to `nodeIds` in order, so the first nodes seen get the first colours. */
export function assignColors(nodeIds) {
  for (const id of nodeIds) colorOf(id);
}

/** A small square of `nodeId`'s colour (set through the CSSOM: the page's CSP forbids inline styles). */
export function swatchOf(nodeId) {
  const swatch = el('span', { class: 'swatch', 'aria-hidden': 'true' });
  swatch.style.backgroundColor = colorOf(nodeId);
  return swatch;
}

/** A node id with its colour swatch. */
export const nodeLabel = (nodeId) =>
  el('span', { class: 'node-id' }, swatchOf(nodeId), el('span', { class: 'mono', translate: 'no', text: nodeId }));
