/*
 * The kanban board of the Leads page (#/leads, board view; leads-page.js): one
 * column per stage of the team's pipeline, one card per lead. A card moves by
 * dragging it to another column or — without a mouse — with its "Move to…"
 * select; either way the page sends a manual stage change (PATCH
 * /api/leads/{id} {stage}). Read-only viewers (no leads.edit) get the cards
 * without a drag handle or select. Builds DOM only; the page owns the data.
 */
import { h, icon } from './dom.js';
import { timeElement, toneClass } from './format.js';
import { leadName } from './leads-data.js';

/**
 * @param {{stages: Array<{key: string, name: string}>, leads: object[],
 *          editable: boolean, agentName: (id: string) => string,
 *          onMove: (lead: object, stage: string) => void}} opts
 * @returns {HTMLElement} the board (scrolls sideways inside itself on wide screens)
 */
export function renderBoard({ stages, leads, editable, agentName, onMove }) {
  const byStage = new Map(stages.map((s) => [s.key, []]));
  for (const l of leads) {
    if (byStage.has(l.stage)) byStage.get(l.stage).push(l);
  }
  const columns = stages.map((s) => column(s, byStage.get(s.key)));
  return h(
    'div',
    {
      className: 'leads-board',
      tabIndex: 0, // a region that scrolls must be reachable by keyboard
      attrs: { role: 'region', 'aria-label': 'Leads by stage' },
      dataset: { testid: 'leads-board' },
    },
    columns,
  );

  function column(stage, items) {
    const titleId = `board-col-${stage.key}`;
    const col = h(
      'section',
      { className: 'board-col', dataset: { stage: stage.key, testid: 'board-column' }, attrs: { 'aria-labelledby': titleId } },
      h('h2', { id: titleId, className: 'board-col-title' }, stage.name, ' ', h('span', { className: 'chip' }, String(items.length))),
      h('ul', { className: 'board-cards' }, items.map((l) => card(l, stage))),
    );
    if (editable) {
      col.addEventListener('dragover', (ev) => {
        ev.preventDefault();
        col.classList.add('is-drop');
      });
      col.addEventListener('dragleave', () => col.classList.remove('is-drop'));
      col.addEventListener('drop', (ev) => {
        ev.preventDefault();
        col.classList.remove('is-drop');
        const id = ev.dataTransfer && ev.dataTransfer.getData('text/plain');
        const lead = leads.find((l) => l.id === id);
        if (lead && lead.stage !== stage.key) onMove(lead, stage.key);
      });
    }
    return col;
  }

  function card(lead, stage) {
    const name = leadName(lead);
    const move = editable
      ? h(
          'label',
          { className: 'board-move' },
          h('span', { className: 'sr-only' }, `Move ${name} to`),
          h(
            'select',
            {
              dataset: { testid: 'board-move' },
              onchange: (ev) => ev.target.value && onMove(lead, ev.target.value),
            },
            h('option', { value: '' }, 'Move to…'),
            stages.filter((s) => s.key !== stage.key).map((s) => h('option', { value: s.key }, s.name)),
          ),
        )
      : null;
    const li = h(
      'li',
      { className: 'board-card', draggable: editable, dataset: { testid: 'board-card', lead: lead.id } },
      h('a', { href: `#/leads/${encodeURIComponent(lead.id)}`, className: 'board-card-name' }, name),
      h(
        'p',
        { className: 'board-card-meta' },
        h('span', {}, lead.owner_id ? agentName(lead.owner_id) : 'No owner'),
        h('span', { className: `chip ${toneClass(lead.priority)}` }, lead.priority),
        lead.open_tasks ? h('span', {}, icon('clock'), ` ${lead.open_tasks} open`) : null,
      ),
      h('p', { className: 'board-card-when' }, 'Last activity ', timeElement(lead.updated_at)),
      move,
    );
    if (editable) {
      li.addEventListener('dragstart', (ev) => {
        ev.dataTransfer.setData('text/plain', lead.id);
        ev.dataTransfer.effectAllowed = 'move';
      });
    }
    return li;
  }
}
