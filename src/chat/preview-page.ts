/**
 * The Chat preview's web page: the messages the worker posted, laid out the way a Chat space shows
 * an app's messages (cardsV2: header, sections of widgets; or plain text with Chat's formatting),
 * updated live over server-sent events from `/stream`.
 *
 * One self-contained document with no outside requests, so it works offline. Card text is HTML of
 * Chat's small subset; the page rebuilds only that subset (b, i, u, s, br, a to http(s), font
 * colour) from an inert <template>, so nothing the adapter was sent can run script in the page.
 */
export const PREVIEW_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vast-gchat · Chat preview</title>
<style>
  :root { font-family: "Google Sans", Roboto, Arial, sans-serif; color: #1f1f1f; }
  body { margin: 0; background: #f6f8fc; }
  header.bar { position: sticky; top: 0; display: flex; align-items: center; gap: 12px;
    padding: 12px 24px; background: #fff; border-bottom: 1px solid #e0e3e7; z-index: 1; }
  header.bar h1 { font-size: 18px; font-weight: 500; margin: 0; }
  #status { font-size: 12px; color: #5f6368; margin-left: auto; }
  #status.live::before { content: "● "; color: #188038; }
  main { max-width: 760px; margin: 0 auto; padding: 16px 24px 48px; }
  #empty { color: #5f6368; font-size: 14px; }
  .post { display: flex; gap: 12px; padding: 12px 0; }
  .avatar { flex: none; width: 32px; height: 32px; border-radius: 50%; background: #1a73e8;
    color: #fff; display: grid; place-items: center; font-weight: 500; }
  .meta { font-size: 14px; margin-bottom: 6px; }
  .meta .name { font-weight: 500; }
  .meta .badge { font-size: 11px; color: #5f6368; border: 1px solid #c4c7c5; border-radius: 4px;
    padding: 0 4px; margin: 0 6px; }
  .meta .time, .meta .thread { color: #5f6368; font-size: 12px; }
  .body { min-width: 0; flex: 1; }
  .text { white-space: pre-wrap; font-size: 14px; line-height: 20px; overflow-wrap: anywhere; }
  .text code { font-family: "Roboto Mono", monospace; background: #f1f3f4; padding: 0 3px; }
  .card { background: #fff; border: 1px solid #dadce0; border-radius: 8px; max-width: 600px;
    overflow: hidden; }
  .card-header { padding: 16px 16px 8px; }
  .card-title { font-size: 16px; font-weight: 500; line-height: 24px; overflow-wrap: anywhere; }
  .card-subtitle { font-size: 12px; color: #5f6368; }
  .section { padding: 4px 16px 12px; }
  .section + .section { border-top: 1px solid #e0e3e7; padding-top: 12px; }
  .section-header { font-size: 14px; font-weight: 500; color: #5f6368; margin-bottom: 4px; }
  .widget { font-size: 14px; line-height: 20px; padding: 4px 0; overflow-wrap: anywhere; }
  .decorated { display: flex; gap: 12px; align-items: center; }
  .top-label { font-size: 12px; color: #5f6368; line-height: 16px; }
  .icon { width: 20px; text-align: center; color: #5f6368; }
  .buttons { display: flex; flex-wrap: wrap; gap: 8px; padding-top: 8px; }
  .buttons a { color: #0b57d0; border: 1px solid #747775; border-radius: 18px; padding: 6px 16px;
    text-decoration: none; font-size: 14px; font-weight: 500; }
  .widget a { color: #0b57d0; }
</style>
</head>
<body>
<header class="bar"><h1>Chat preview</h1><span>what your Google Chat space receives</span>
  <span id="status">connecting…</span></header>
<main>
  <p id="empty">No messages yet. Events delivered by the adapter appear here as they arrive.</p>
  <div id="messages"></div>
</main>
<script>
"use strict";
// Plain symbols rather than emoji: they draw even where no emoji font is installed.
const ICONS = { CLOCK: "◷", DESCRIPTION: "☰", EMAIL: "✉", BOOKMARK: "⚑", STAR: "★" };
const ALLOWED = new Set(["B", "I", "U", "S", "STRIKE", "BR", "A", "FONT"]);
// Elements whose content is code or markup, not text: dropped whole, as Chat drops them.
const DROPPED = new Set(["SCRIPT", "STYLE", "TEMPLATE", "IFRAME", "OBJECT", "NOSCRIPT", "SVG", "MATH"]);
const shown = new Set();

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Chat's card HTML subset, rebuilt element by element from inert markup. */
function richText(html) {
  const template = document.createElement("template");
  template.innerHTML = String(html ?? "");
  return copyAllowed(template.content);
}

function copyAllowed(from) {
  const out = document.createDocumentFragment();
  for (const child of from.childNodes) {
    if (child.nodeType === Node.TEXT_NODE) out.append(child.textContent);
    if (child.nodeType !== Node.ELEMENT_NODE || DROPPED.has(child.tagName.toUpperCase())) continue;
    if (!ALLOWED.has(child.tagName)) { out.append(copyAllowed(child)); continue; }
    let copy;
    if (child.tagName === "A") {
      copy = document.createElement("a");
      const href = child.getAttribute("href") ?? "";
      if (/^https?:\\/\\//i.test(href)) { copy.href = href; copy.target = "_blank"; copy.rel = "noopener noreferrer"; }
    } else if (child.tagName === "FONT") {
      copy = document.createElement("span");
      const color = child.getAttribute("color") ?? "";
      if (/^#[0-9a-f]{3,8}$/i.test(color)) copy.style.color = color;
    } else {
      copy = document.createElement(child.tagName === "STRIKE" ? "s" : child.tagName.toLowerCase());
    }
    copy.append(copyAllowed(child));
    out.append(copy);
  }
  return out;
}

/** Chat's text formatting: *bold*, _italic_, ~strike~, \`code\`, <url|label>. */
function chatText(text) {
  const out = document.createDocumentFragment();
  const pattern = /<(https?:\\/\\/[^|>\\s]+)(?:\\|([^>]+))?>|\\*([^*\\n]+)\\*|_([^_\\n]+)_|~([^~\\n]+)~|\`([^\`\\n]+)\`/g;
  let last = 0;
  for (const match of String(text ?? "").matchAll(pattern)) {
    out.append(match.input.slice(last, match.index));
    last = match.index + match[0].length;
    if (match[1]) {
      const link = el("a", "", match[2] ?? match[1]);
      link.href = match[1]; link.target = "_blank"; link.rel = "noopener noreferrer";
      out.append(link);
    } else if (match[3]) out.append(el("b", "", match[3]));
    else if (match[4]) out.append(el("i", "", match[4]));
    else if (match[5]) out.append(el("s", "", match[5]));
    else out.append(el("code", "", match[6]));
  }
  out.append(String(text ?? "").slice(last));
  return out;
}

function widget(w) {
  if (w.textParagraph) {
    const node = el("div", "widget text-paragraph");
    node.append(richText(w.textParagraph.text));
    return node;
  }
  if (w.decoratedText) {
    const d = w.decoratedText;
    const node = el("div", "widget decorated");
    const icon = d.startIcon && d.startIcon.knownIcon;
    if (icon) node.append(el("span", "icon", ICONS[icon] ?? "•"));
    const column = el("div");
    if (d.topLabel) column.append(el("div", "top-label", d.topLabel));
    const text = el("div", "decorated-text");
    text.append(richText(d.text));
    column.append(text);
    if (d.bottomLabel) column.append(el("div", "top-label", d.bottomLabel));
    node.append(column);
    return node;
  }
  if (w.buttonList) {
    const node = el("div", "widget buttons");
    for (const button of w.buttonList.buttons ?? []) {
      const link = el("a", "button", button.text);
      const url = button.onClick && button.onClick.openLink && button.onClick.openLink.url;
      if (/^https?:\\/\\//i.test(url ?? "")) { link.href = url; link.target = "_blank"; link.rel = "noopener noreferrer"; }
      node.append(link);
    }
    return node;
  }
  if (w.divider !== undefined) return el("hr");
  return el("div", "widget", "(a widget the preview does not draw)");
}

function card(c) {
  const node = el("div", "card");
  if (c.header) {
    const head = el("div", "card-header");
    head.append(el("div", "card-title", c.header.title ?? ""));
    if (c.header.subtitle) head.append(el("div", "card-subtitle", c.header.subtitle));
    node.append(head);
  }
  for (const s of c.sections ?? []) {
    const section = el("div", "section");
    if (s.header) section.append(el("div", "section-header", s.header));
    for (const w of s.widgets ?? []) section.append(widget(w));
    node.append(section);
  }
  return node;
}

function post(entry) {
  const node = el("article", "post");
  node.dataset.n = String(entry.n);
  node.append(el("div", "avatar", "V"));
  const body = el("div", "body");
  const meta = el("div", "meta");
  meta.append(el("span", "name", "vast-gchat"), el("span", "badge", "App"),
    el("span", "time", new Date(entry.receivedAt).toLocaleTimeString()));
  if (entry.threadKey) meta.append(el("span", "thread", " · thread " + entry.threadKey));
  body.append(meta);
  const message = entry.message ?? {};
  if (message.text) {
    const text = el("div", "text");
    text.append(chatText(message.text));
    body.append(text);
  }
  for (const item of message.cardsV2 ?? []) if (item && item.card) body.append(card(item.card));
  node.append(body);
  return node;
}

const status = document.getElementById("status");
const stream = new EventSource("stream");
stream.onopen = () => { status.textContent = "live"; status.className = "live"; };
stream.onerror = () => { status.textContent = "disconnected (is the demo still running?)"; status.className = ""; };
stream.onmessage = (event) => {
  const entry = JSON.parse(event.data);
  if (shown.has(entry.n)) return;
  shown.add(entry.n);
  document.getElementById("empty").hidden = true;
  document.getElementById("messages").append(post(entry));
  document.title = "(" + shown.size + ") vast-gchat · Chat preview";
};
</script>
</body>
</html>
`;
