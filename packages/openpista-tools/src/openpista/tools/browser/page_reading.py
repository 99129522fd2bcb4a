"""What the LLM reads of a page: its visible text, and the links, fields and buttons it can
act on, each with a CSS selector that browser.click and browser.type accept."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from playwright.async_api import Locator, Page

MAX_CONTROLS = 40
"""At most this many links, fields and buttons are listed: enough to choose from, bounded."""
MAX_LABEL_CHARS = 60

# Runs in the page. `describe(el)` says what an element is; `selectorFor(el)` builds a CSS
# selector matching only it: its id, else a telling attribute, else a path of :nth-of-type.
_PAGE_HELPERS = r"""
const quote = (v) => '"' + v.replace(/["\\]/g, '\\$&') + '"';
const unique = (s) => {
  try { return document.querySelectorAll(s).length === 1; } catch { return false; }
};
const selectorFor = (el) => {
  if (el.id && unique('#' + CSS.escape(el.id))) return '#' + CSS.escape(el.id);
  const tag = el.tagName.toLowerCase();
  for (const attr of ['name', 'aria-label', 'placeholder', 'href', 'title', 'value', 'type']) {
    const v = el.getAttribute(attr);
    const s = `${tag}[${attr}=${quote(v || '')}]`;
    if (v && v.length <= 80 && unique(s)) return s;
  }
  const parts = [];
  const top = document.documentElement;
  for (let node = el; node && node.nodeType === 1 && node !== top; node = node.parentElement) {
    const id = node.id ? '#' + CSS.escape(node.id) : '';
    if (node !== el && id && unique(id)) { parts.unshift(id); break; }
    let part = node.tagName.toLowerCase();
    const parent = node.parentElement;
    if (parent) {
      const same = [...parent.children].filter((c) => c.tagName === node.tagName);
      if (same.length > 1) part += `:nth-of-type(${same.indexOf(node) + 1})`;
    }
    parts.unshift(part);
  }
  return parts.join(' > ');
};
const squash = (t) => (t || '').replace(/\s+/g, ' ').trim();
const describe = (el) => {
  const tag = el.tagName.toLowerCase();
  const type = (el.getAttribute('type') || '').toLowerCase();
  let kind = tag;
  if (tag === 'a') kind = 'link';
  else if (tag === 'button') kind = 'button';
  else if (tag === 'input' && ['submit', 'button', 'reset', 'image'].includes(type)) {
    kind = 'button';
  }
  else if (tag === 'input') kind = type && type !== 'text' ? `field (${type})` : 'field';
  else if (tag === 'textarea') kind = 'field (multi-line)';
  else if (tag === 'select') kind = 'choice';
  let fromLabels = '';
  if (el.labels && el.labels.length) {
    // A label wrapping its control would also name the control's options: leave them out.
    const label = el.labels[0].cloneNode(true);
    label.querySelectorAll('select, textarea, button').forEach((c) => c.remove());
    fromLabels = squash(label.textContent);
  }
  const label = squash(el.getAttribute('aria-label')) || fromLabels
    || (kind === 'button' && tag === 'input' ? squash(el.value) : squash(el.innerText))
    || squash(el.getAttribute('placeholder')) || squash(el.getAttribute('title'))
    || squash(el.getAttribute('name')) || squash(el.getAttribute('alt'));
  let value = '';
  if (tag === 'select') value = el.selectedOptions.length ? squash(el.selectedOptions[0].text) : '';
  else if (tag === 'textarea') value = el.value || '';
  else if (tag === 'input' && kind !== 'button' && type !== 'password') value = el.value || '';
  if (type === 'checkbox' || type === 'radio') value = el.checked ? 'checked' : 'not checked';
  return { kind, label, value, href: tag === 'a' ? el.href : '', selector: selectorFor(el) };
};
"""

_READ_PAGE = (
    "(max) => {"
    + _PAGE_HELPERS
    + r"""
  const visible = (el) => {
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (box.width === 0 || box.height === 0) return false;
    return style.visibility !== 'hidden' && style.display !== 'none';
  };
  const all = [...document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), textarea, select, [role=button], '
    + '[role=link], [contenteditable=""], [contenteditable=true]'
  )].filter(visible);
  return {
    text: document.body ? document.body.innerText : '',
    controls: all.slice(0, max).map(describe),
    controlCount: all.length,
  };
}"""
)

_DESCRIBE_ELEMENT = "(el) => {" + _PAGE_HELPERS + "return describe(el); }"


@dataclass(frozen=True, slots=True)
class Control:
    """A link, field or button of the page, as the LLM sees it."""

    kind: str
    label: str
    value: str
    href: str
    selector: str

    def summary(self) -> str:
        """`button "Send"`, `field (email) "Email" = "a@b.c"`: what the element is."""
        text = self.kind
        if self.label:
            text += f' "{_clip(self.label)}"'
        if self.value:
            text += f' = "{_clip(self.value)}"' if self.value not in _STATES else f" ({self.value})"
        return text

    def line(self) -> str:
        line = f"- {self.summary()} -> {self.selector}"
        return f"{line} ({self.href})" if self.href and self.href not in line else line


_STATES = ("checked", "not checked")


@dataclass(frozen=True, slots=True)
class PageReading:
    url: str
    title: str
    text: str
    controls: list[Control]
    control_count: int

    def render(self, max_chars: int) -> str:
        """The text the LLM gets: URL, title, the visible text cut at `max_chars`, then the
        controls with their selectors."""
        text = _tidy(self.text)
        if len(text) > max_chars:
            cut = len(text) - max_chars
            text = (
                f"{text[:max_chars]}\n[... {cut:,} more characters; call browser.content with a "
                "larger max_chars to read them]"
            )
        parts = [f"URL: {self.url}", f"Title: {self.title or '(none)'}", "", text or "(no text)"]
        if self.controls:
            shown = len(self.controls)
            more = self.control_count - shown
            parts += [
                "",
                "Links, fields and buttons (selectors for browser.click and browser.type):",
            ]
            parts += [control.line() for control in self.controls]
            if more > 0:
                parts.append(f"(and {more} more not listed)")
        return "\n".join(parts)


async def read_page(page: Page) -> PageReading:
    raw = cast("dict[str, Any]", await page.evaluate(_READ_PAGE, MAX_CONTROLS))
    controls = [_control(item) for item in cast("list[dict[str, Any]]", raw["controls"])]
    return PageReading(
        url=page.url,
        title=await page.title(),
        text=str(raw["text"]),
        controls=controls,
        control_count=int(raw["controlCount"]),
    )


async def describe_element(locator: Locator) -> Control:
    """What `locator`'s element is (for a click or type result)."""
    return _control(cast("dict[str, Any]", await locator.evaluate(_DESCRIBE_ELEMENT)))


def _control(raw: dict[str, Any]) -> Control:
    return Control(
        kind=str(raw["kind"]),
        label=str(raw["label"]),
        value=str(raw["value"]),
        href=str(raw["href"]),
        selector=str(raw["selector"]),
    )


def _clip(text: str) -> str:
    return text if len(text) <= MAX_LABEL_CHARS else text[: MAX_LABEL_CHARS - 1] + "…"


_BLANK_LINES = re.compile(r"\n[ \t]*(\n[ \t]*)+")


def _tidy(text: str) -> str:
    """innerText with runs of blank lines folded into one."""
    return _BLANK_LINES.sub("\n\n", text).strip()
