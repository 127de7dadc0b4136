/**
 * Escaping of untrusted text (prompts, method names, config values) for the report formats.
 *
 * Prompts are user text: a prompt like `<script>` or `a | b` must show as written, never run as
 * markup or break a table.
 */

const HTML_ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ENTITIES[c] as string);
}

/**
 * Text for one line of Markdown (a paragraph or a table cell). Markdown renderers pass inline HTML
 * through, so `<`, `>`, `&` and quotes become entities; Markdown's own punctuation is
 * backslash-escaped so `*`, `_`, `[` and `|` stay literal; line breaks become spaces so a prompt
 * cannot end a table row.
 */
export function escapeMarkdown(text: string): string {
  // Backslashes first, entities second: escaping after would break the `#` of `&#39;`.
  return escapeHtml(text.replace(/[\r\n\u2028\u2029]+/g, ' ').replace(/[\\`*_[\]#+\-!|~]/g, '\\$&'));
}

/** Text for the content of an SVG `<text>` element or attribute (XML rules, same as HTML here). */
export const escapeXml = escapeHtml;

/**
 * `href` when it is a relative path of plain segments ending in `.html` (`../../x/report.html`),
 * else undefined: a link the report writes must stay inside the store, never a URL or a script.
 */
export function safeRelativeHref(href: string | undefined): string | undefined {
  if (href === undefined) return undefined;
  const segments = href.split('/');
  let leading = true;
  for (const [i, seg] of segments.entries()) {
    if (seg === '..' && leading) continue;
    leading = false;
    if (!/^[A-Za-z0-9._=+@,~%-]+$/.test(seg) || seg === '.' || seg === '..') return undefined;
    if (i === segments.length - 1 && !seg.endsWith('.html')) return undefined;
  }
  return leading ? undefined : href;
}

/** A file-name-safe slug of a method or stage name, e.g. "DRO (ours)" -> "dro-ours". */
export function slug(name: string): string {
  const s = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return s === '' ? 'unnamed' : s.slice(0, 48);
}
