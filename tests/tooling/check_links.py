#!/usr/bin/env python3
"""Checks the relative links of README.md and docs/*.md.

Every link or image target that is not a URL (http:, https:, mailto:) must name an existing file
or directory, relative to the Markdown file, and a "#anchor" (alone, or after a .md path) must
be the slug of a heading in the target file, by GitHub's rules: the heading's text without
Markdown markup, lowercased, every character that is not a letter, digit, space, '-' or '_'
dropped, spaces turned into '-', and "-1", "-2", ... appended to repeated slugs. Links inside
code (fenced blocks, `spans`) are not links and are skipped.

Usage: check_links.py SOURCE_DIR    (ctest: docs_link_check). Exit 1 with one line per broken
link (file:line: target: reason), 0 when all resolve.
"""
import os
import re
import sys

FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target "title") and ![alt](target); the text may hold one level of [brackets].
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")


def lines_outside_code(text):
    """(line number, line) for each line not in a fenced code block, code spans blanked."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if match:
            if fence is None:
                fence = match.group(1)
            elif match.group(1) == fence:
                fence = None
            continue
        if fence is None:
            yield number, line


def heading_text(raw):
    """A heading's visible text: links keep their text, code spans their content."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", raw)
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    return text


def slug(text):
    text = text.strip().lower()
    # GitHub keeps letters, digits, '_', '-' and spaces (markup characters such as *, `, ~, =
    # fall out with the rest of the punctuation).
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


_anchor_cache = {}


def anchors(path):
    if path not in _anchor_cache:
        found = set()
        counts = {}
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for _, line in lines_outside_code(text):
            for name in HTML_ANCHOR.findall(line):
                found.add(name)
            match = HEADING.match(line)
            if not match:
                continue
            base = slug(heading_text(match.group(2)))
            n = counts.get(base, 0)
            counts[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
        _anchor_cache[path] = found
    return _anchor_cache[path]


def targets(text):
    for number, line in lines_outside_code(text):
        line = CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)
        for match in INLINE_LINK.finditer(line):
            yield number, match.group(1)
        match = REFERENCE_DEF.match(line)
        if match:
            yield number, match.group(1)


def check(root, relative):
    path = os.path.join(root, relative)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    errors = []
    checked = 0
    for number, target in targets(text):
        if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
            continue  # a URL (http:, https:, mailto:, ...): not ours to check offline
        checked += 1
        file_part, _, anchor = target.partition("#")
        if file_part:
            resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part))
            if not os.path.exists(resolved):
                errors.append(f"{relative}:{number}: {target}: no such file")
                continue
        else:
            resolved = path
        if anchor:
            if not resolved.endswith(".md") or os.path.isdir(resolved):
                continue  # an anchor into a source file (#L10) is GitHub's, not a heading
            if anchor not in anchors(resolved):
                errors.append(f"{relative}:{number}: {target}: no heading with anchor "
                              f"#{anchor} in {os.path.relpath(resolved, root)}")
    return checked, errors


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    root = sys.argv[1]
    files = ["README.md"]
    docs = os.path.join(root, "docs")
    if os.path.isdir(docs):
        files += sorted(os.path.join("docs", n) for n in os.listdir(docs) if n.endswith(".md"))
    errors = []
    checked = 0
    for relative in files:
        n, found = check(root, relative)
        checked += n
        errors += found
    for error in errors:
        print(error)
    if errors:
        print(f"check_links: {len(errors)} of {checked} relative links broken")
        return 1
    print(f"check_links: {len(files)} files, all {checked} relative links resolve")
    return 0


if __name__ == "__main__":
    sys.exit(main())
