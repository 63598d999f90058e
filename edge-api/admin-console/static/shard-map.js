// The shard map: one small cell per shard, coloured by the node that owns it, with a legend.
import { el, fill } from './dom.js';
import { t } from './i18n.js';
import { colorOf, swatchOf } from './node-colors.js';

/**
 * Renders `owners` (index = shard, value = owning node id) into `map` and the count per node into
 * `legend`. Cells and legend are rebuilt only when the owners or the language changed (the map is polled every
 * second).
 */
export function renderShardMap(map, legend, owners) {
  const signature = owners.join(',');
  if (map.dataset.signature !== signature || map.dataset.lang !== document.documentElement.lang) {
    const cells = owners.map((owner, shard) => {
      const cell = el('span', {
        class: 'shard',
        title: t('cluster.shardTitle', { shard, node: owner }),
        dataset: { shard: String(shard), owner },
      });
      // The CSSOM, not a style attribute: the page's CSP forbids inline styles.
      cell.style.backgroundColor = colorOf(owner);
      return cell;
    });
    fill(map, cells.length > 0 ? cells : el('p', { class: 'muted', text: t('cluster.noShards') }));
    map.dataset.signature = signature;
    map.dataset.lang = document.documentElement.lang;
  }
  const lang = document.documentElement.lang;
  if (legend.dataset.signature === signature && legend.dataset.lang === lang) return;
  legend.dataset.signature = signature;
  legend.dataset.lang = lang;
  const counts = new Map();
  for (const owner of owners) counts.set(owner, (counts.get(owner) ?? 0) + 1);
  fill(
    legend,
    [...counts]
      .sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
      .map(([node, count]) =>
        el(
          'span',
          { class: 'legend-item' },
          swatchOf(node),
          el('span', { class: 'mono', translate: 'no', text: node }),
          ` ${t('cluster.shardCount', { count })}`,
        ),
      ),
  );
}
