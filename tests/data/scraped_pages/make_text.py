#!/usr/bin/env python3
"""Convert a saved HTML page to text the way a plain web scraper does.

Method (deliberately the common, naive one -- no main-content extraction):
  * decode with the charset declared in the page (gb2312/gbk -> gb18030), else utf-8;
  * parse with BeautifulSoup(html, "lxml");
  * drop <script>, <style>, <noscript>, <template> (never visible text);
    HTML comments are not text and are skipped by get_text();
  * text = soup.get_text("\n")  -> one line per text node, so block elements
    and also inline elements (links, spans, buttons) end up on their own lines;
  * every line is stripped; runs of blank lines are collapsed to one blank line;
    leading/trailing blank lines are removed.

Usage: make_text.py page.html > page.txt
Requires: beautifulsoup4, lxml (install in a throwaway venv).
"""

import re
import sys

from bs4 import BeautifulSoup


def decode(raw: bytes) -> str:
    m = re.search(rb'charset\s*=\s*["\']?\s*([A-Za-z0-9_-]+)', raw[:8000])
    enc = m.group(1).decode("ascii").lower() if m else "utf-8"
    if enc in ("gb2312", "gbk", "gb_2312-80", "x-gbk"):
        enc = "gb18030"
    try:
        return raw.decode(enc)
    except (LookupError, UnicodeDecodeError):
        return raw.decode("utf-8", errors="replace")


def html_to_text(html: str) -> str:
    soup = BeautifulSoup(html, "lxml")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    text = soup.get_text("\n")
    out, blank = [], False
    for line in text.splitlines():
        line = line.strip()
        if not line:
            if out and not blank:
                out.append("")
            blank = True
            continue
        out.append(line)
        blank = False
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    with open(sys.argv[1], "rb") as fh:
        sys.stdout.write(html_to_text(decode(fh.read())))
