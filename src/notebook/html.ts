/** Small pieces of the HTML and text every card is made of. */

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** 1536 → '1.5 KiB'. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

/** A link that carries the token, as Jupyter's own: opening it once sets a cookie. */
export function linkWithToken(link: string, token: string | undefined): string {
  if (token === undefined) return link;
  const url = new URL(link);
  url.searchParams.set('token', token);
  return url.href;
}

/** One row of a card: a label, and HTML (already escaped) or text. */
export interface Row {
  readonly label: string;
  /** Names the row for programs reading the HTML (`data-field`). */
  readonly field: string;
  readonly text: string;
  /** Default: the text, escaped. */
  readonly html?: string;
}

const CARD_STYLE = 'font-family: var(--jp-ui-font-family, sans-serif); font-size: 13px; border-left: 3px solid #e07a1f; padding: 4px 10px; margin: 2px 0';
const CELL = 'text-align: left; padding: 1px 12px 1px 0';

/** A card: a title, then label / value rows, then any extra HTML. */
export function cardHtml(kind: string, title: string, subtitle: string, rows: readonly Row[], extra = ''): string {
  const body = rows
    .map((r) => `<tr><th style="${CELL}">${escapeHtml(r.label)}</th><td style="${CELL}" data-field="${r.field}">${r.html ?? escapeHtml(r.text)}</td></tr>`)
    .join('');
  return (
    `<div class="tessera-${kind}" style="${CARD_STYLE}">` +
    `<div style="font-weight: bold; margin-bottom: 2px">${escapeHtml(title)} <span style="font-weight: normal; color: #777">${escapeHtml(subtitle)}</span></div>` +
    `<table style="border-collapse: collapse; margin: 0">${body}</table>${extra}</div>`
  );
}

/** The same card as text: a title line, then indented `label: value` lines. */
export function cardText(title: string, subtitle: string, rows: readonly Row[]): string {
  return [`${title} ${subtitle}`.trim(), ...rows.map((r) => `  ${r.label}: ${r.text}`)].join('\n');
}

/** A link that opens in a new tab. */
export function linkHtml(href: string, text = href): string {
  return `<a href="${escapeHtml(href)}" target="_blank" rel="noopener">${escapeHtml(text)}</a>`;
}
