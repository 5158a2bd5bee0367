/*
 * What the inbox knows about a conversation's contact, drawn the same way in the
 * list rows, the view header and the details panel: the display name (the hub
 * generates a readable two-word one for anonymous visitors), country (flag and
 * name from `contact.country`), the returning-visitor badge, where they came
 * from (`source`, `page_url`) and the contact's own time zone and language.
 * User data goes into text nodes only (h() / linkify()).
 */
import { h, icon, linkify } from './dom.js';
import { contactName, countryInfo } from './format.js';

export { contactName };

/** Small badges for a list row or header: country and "Returning". */
export function contactBadges(conv) {
  const c = (conv && conv.contact) || {};
  const out = [];
  const country = countryInfo(c.country);
  if (country) {
    out.push(
      h(
        'span',
        { className: 'badge contact-country', title: country.name, dataset: { testid: 'contact-country' } },
        h('span', { attrs: { 'aria-hidden': 'true' } }, country.flag),
        h('span', { className: 'contact-country-name' }, country.name),
      ),
    );
  }
  if (c.returning) {
    out.push(
      h('span', { className: 'badge badge-info', dataset: { testid: 'contact-returning' } }, icon('rotate-ccw'), 'Returning'),
    );
  }
  return out;
}

/** Where the conversation came from: "via pricing-page · example.com/pricing". */
export function originText(conv) {
  if (!conv) return '';
  let page = '';
  if (conv.page_url) {
    try {
      const u = new URL(conv.page_url);
      page = `${u.host}${u.pathname === '/' ? '' : u.pathname}`;
    } catch {
      page = String(conv.page_url);
    }
  }
  return [conv.source && `via ${conv.source}`, page].filter(Boolean).join(' · ');
}

/** "Europe/Berlin (now 18:05 there)": the contact's zone and their local time. */
function zoneText(zone) {
  if (!zone) return '';
  try {
    const there = new Intl.DateTimeFormat(navigator.languages, { timeZone: zone, hour: 'numeric', minute: '2-digit' }).format(new Date());
    return `${zone} (now ${there} there)`;
  } catch {
    return String(zone); // not an IANA zone this browser knows
  }
}

/** Definition-list rows (dt/dd pairs) for the details panel. */
export function contactFacts(conv) {
  const c = (conv && conv.contact) || {};
  const rows = [];
  const add = (label, value) => {
    if (value === null || value === undefined || value === '') return;
    rows.push(h('dt', {}, label), value instanceof Node ? h('dd', {}, value) : h('dd', {}, String(value)));
  };
  add('Name', contactName(c) + (c.generated_name ? ' (generated)' : ''));
  add('Email', c.email);
  add('Phone', c.phone);
  const country = countryInfo(c.country);
  if (country) add('Country', `${country.flag} ${country.name}`);
  add('Time zone', zoneText(c.time_zone));
  add('Language', c.locale);
  if (c.returning !== undefined) add('Visits', c.returning ? 'Returning visitor' : 'First visit');
  add('Source', conv && conv.source);
  if (conv && conv.page_url) add('Page', linkify(h('span', { className: 'page-url' }), conv.page_url));
  return rows;
}
