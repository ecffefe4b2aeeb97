"""Every relative link of the README and docs/ reaches a file, and every ``#anchor`` a heading of that file.

The README is the front door and the docs cross-reference each other by section (``results.md#...``): a renamed
heading or a moved page would otherwise leave a dead link that no other test sees. Anchors follow GitHub's rule
(lower case; characters other than letters, digits, spaces, hyphens and underscores dropped; spaces become
hyphens; a repeated heading gets ``-1``, ``-2``, ...).
"""

from __future__ import annotations

import os.path as osp
import re
from collections import Counter
from functools import lru_cache
from glob import glob
from typing import List, Set, Tuple

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
PAGES = sorted([osp.join(REPO, 'README.md')] + glob(osp.join(REPO, 'docs', '*.md')))
#: a link or an image: ``[text](target)`` / ``![alt](target)``
LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)\)')


def prose_lines(text: str) -> List[str]:
    """The lines outside fenced code blocks (a ``# comment`` in a bash block is no heading)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith('```'):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor of a heading's text."""
    text = heading.strip().lower()
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


@lru_cache(maxsize=None)
def anchors(path: str) -> Set[str]:
    """The anchors GitHub gives the headings of a markdown file, repeats numbered."""
    seen: Counter = Counter()
    result = set()
    for line in prose_lines(open(path, encoding='utf-8').read()):
        match = re.match(r'#{1,6}\s+(.*)', line)
        if not match:
            continue
        base = slug(match.group(1))
        result.add(base if seen[base] == 0 else f'{base}-{seen[base]}')
        seen[base] += 1
    return result


def dead_links(path: str) -> List[Tuple[str, str]]:
    """(link, why) for each relative link of ``path`` that reaches no file or no heading."""
    problems = []
    text = '\n'.join(prose_lines(open(path, encoding='utf-8').read()))
    for target in LINK.findall(text):
        if re.match(r'[a-z]+:', target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition('#')
        linked = osp.normpath(osp.join(osp.dirname(path), file_part)) if file_part else path
        if not osp.exists(linked):
            problems.append((target, 'no such file'))
        elif anchor and linked.endswith('.md') and anchor not in anchors(linked):
            problems.append((target, f'no heading with anchor #{anchor} in {osp.relpath(linked, REPO)}'))
    return problems


def test_slug_follows_githubs_rule():
    assert slug('7. Parts a 16-pixel patch grid can resolve (`--bold-parts`)') == (
        '7-parts-a-16-pixel-patch-grid-can-resolve---bold-parts'
    )
    assert slug("The paper's claims across seeds (LOCATE and the six rows, 3 seeds each)") == (
        'the-papers-claims-across-seeds-locate-and-the-six-rows-3-seeds-each'
    )


def test_dead_links_are_found(tmp_path):
    """The check itself reports a missing file, a missing heading and a heading inside a code block."""
    (tmp_path / 'other.md').write_text('# Real heading\n\n```bash\n# not a heading\n```\n')
    page = tmp_path / 'page.md'
    page.write_text(
        '# Top\n\n[ok](other.md#real-heading) [self](#top) [gone](missing.md) [bad](other.md#nope)\n'
        '[fenced](other.md#not-a-heading) ![pic](pic.png) [web](https://example.com/x)\n'
    )
    assert dead_links(str(page)) == [
        ('missing.md', 'no such file'),
        ('other.md#nope', 'no heading with anchor #nope in ' + osp.relpath(str(tmp_path / 'other.md'), REPO)),
        (
            'other.md#not-a-heading',
            'no heading with anchor #not-a-heading in ' + osp.relpath(str(tmp_path / 'other.md'), REPO),
        ),
        ('pic.png', 'no such file'),
    ]


def test_repeated_headings_are_numbered(tmp_path):
    page = tmp_path / 'page.md'
    page.write_text('## Results\n\n## Results\n')
    assert anchors(str(page)) == {'results', 'results-1'}


@pytest.mark.parametrize('page', PAGES, ids=lambda p: osp.relpath(p, REPO))
def test_every_relative_link_resolves(page):
    problems = dead_links(page)
    assert not problems, f'{osp.relpath(page, REPO)}: ' + '; '.join(f'{t}: {why}' for t, why in problems)
