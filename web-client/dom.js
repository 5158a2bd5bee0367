/*
 * DOM helpers for the inbox. Everything that may carry user data goes through
 * text nodes: h() turns string children into text nodes, and linkify() builds
 * <a> elements itself instead of parsing HTML.
 */

/**
 * h('div', {className: 'x', dataset: {id}, onclick}, 'text', child)
 * Keys starting with "on" become listeners, `dataset` and `attrs` are copied,
 * anything else is set as a property.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'attrs') for (const [a, v] of Object.entries(value)) el.setAttribute(a, v);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else el[key] = value;
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const URL_RE = /\bhttps?:\/\/[^\s<>"']+/gi;

/** Appends `text` to `parent`, with http(s) URLs as safe links. */
export function linkify(parent, text) {
  const s = String(text ?? '');
  let last = 0;
  for (const m of s.matchAll(URL_RE)) {
    // Trailing sentence punctuation and an unmatched ")" belong to the prose.
    let raw = m[0].replace(/[.,;:!?'"]+$/, '');
    if (raw.endsWith(')') && !raw.includes('(')) raw = raw.slice(0, -1);
    let url;
    try {
      url = new URL(raw);
    } catch {
      continue;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') continue;
    if (m.index > last) parent.append(document.createTextNode(s.slice(last, m.index)));
    const a = document.createElement('a');
    a.href = url.href;
    a.target = '_blank';
    a.rel = 'noopener noreferrer nofollow';
    a.textContent = raw;
    parent.append(a);
    last = m.index + raw.length;
  }
  if (last < s.length) parent.append(document.createTextNode(s.slice(last)));
  return parent;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * An icon from the Lucide sprite (/app/icons.svg). Decorative (aria-hidden) unless
 * `label` is given, in which case it is an image with that accessible name.
 */
export function icon(name, label) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('class', `icon icon-${name}`);
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('focusable', 'false');
  if (label) {
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', label);
  } else {
    svg.setAttribute('aria-hidden', 'true');
  }
  const use = document.createElementNS(SVG_NS, 'use');
  use.setAttribute('href', `/app/icons.svg#${name}`);
  svg.append(use);
  return svg;
}
