"""Text normalisation for tables pasted out of PDF and Word files.

PDF extraction leaves spaces where a line wrapped (``执 法信息``), turns full-width punctuation
half-width in places (``各县 (市、 区 ) 政府``) and loses nothing else.  Everything here is a pure
function so the loader, the unit registry and the collector normalise text the same way, and
so the property tests in ``tests/test_text.py`` can pin the rules down.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

__all__ = [
    "is_cjk",
    "task_list",
    "normalize_text",
    "squash",
    "split_units",
    "parse_unit_cell",
    "STATUS_OPTIONS",
    "normalize_status",
    "canonical_status",
    "looks_like_units",
]

# Full-width forms of ASCII letters and digits are folded to ASCII so that ``１．`` numbers a task.
_FULLWIDTH_ALNUM = {cp: cp - 0xFEE0 for cp in list(range(0xFF10, 0xFF1A)) + list(range(0xFF21, 0xFF3B))
                    + list(range(0xFF41, 0xFF5B))}

_CJK_RANGES = (
    (0x2E80, 0x2FDF),  # radicals
    (0x3000, 0x303F),  # CJK symbols and punctuation (、。〔〕《》…)
    (0x3040, 0x30FF),  # kana
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0xFE30, 0xFE4F),  # CJK compatibility forms
    (0xFF01, 0xFF0F),  # full-width punctuation ！＂＃…／
    (0xFF1A, 0xFF20),  # ：；＜＝＞？＠
    (0xFF3B, 0xFF40),
    (0xFF5B, 0xFF65),
    (0x20000, 0x2FA1F),
)
# Typographic marks that sit inside Chinese text and never separate Latin words.
_CJK_MARKS = set("“”‘’—…·")

_HALF_TO_FULL = {",": "，", ";": "；", ":": "：", "?": "？", "!": "！"}
_OPEN = "(（[【〔《"
_CLOSE = ")）]】〕》"
_WS_RE = re.compile(r"[\s\u00a0\u3000\u200b\ufeff]+")


def is_cjk(ch: str) -> bool:
    """True for Chinese characters and Chinese punctuation (both glue to their neighbours)."""
    if not ch:
        return False
    if ch in _CJK_MARKS:
        return True
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def _is_ideograph(ch: str) -> bool:
    cp = ord(ch)
    return 0x3400 <= cp <= 0x9FFF or 0xF900 <= cp <= 0xFAFF or 0x20000 <= cp <= 0x2FA1F


def _fold_parens(chars: list[str]) -> None:
    """Turn ASCII parentheses around Chinese content into full-width ones, in place."""
    stack: list[int] = []
    for i, ch in enumerate(chars):
        if ch in "(（":
            stack.append(i)
        elif ch in ")）":
            if stack:
                j = stack.pop()
                inner = chars[j + 1 : i]
                if any(_is_ideograph(c) for c in inner):
                    chars[j], chars[i] = "（", "）"
            elif ch == ")" and _neighbour(chars, i, -1, cjk_only=True):
                chars[i] = "）"
    for j in stack:  # unmatched opening parenthesis
        if chars[j] == "(" and _neighbour(chars, j, +1, cjk_only=True):
            chars[j] = "（"


def _neighbour(chars: list[str], i: int, step: int, cjk_only: bool = False) -> str:
    """The nearest non-space character from ``i`` in direction ``step`` ('' at the edge)."""
    k = i + step
    while 0 <= k < len(chars) and chars[k].isspace():
        k += step
    if 0 <= k < len(chars):
        ch = chars[k]
        if cjk_only and not is_cjk(ch):
            return ""
        return ch
    return ""


def normalize_text(value: object) -> str:
    """Normalise one cell of Chinese text.

    - whitespace runs collapse; whitespace touching a Chinese character or Chinese punctuation
      is removed (PDF line wraps), whitespace between two Latin/digit words is kept as one space;
    - ASCII ``, ; : ? !`` next to Chinese text and ASCII parentheses around Chinese text become
      full-width, so ``各县 (市、 区 ) 政府`` and ``各县（市、区）政府`` compare equal;
    - full-width letters and digits become ASCII.
    """
    if value is None:
        return ""
    text = unicodedata.normalize("NFC", str(value)).translate(_FULLWIDTH_ALNUM)
    text = _WS_RE.sub(" ", text).strip()
    if not text:
        return ""
    chars = list(text)
    # Folding one mark can put another next to Chinese (",,一", "(,一"): repeat until stable.
    while True:
        before_pass = chars.copy()
        _fold_parens(chars)
        for i, ch in enumerate(chars):
            full = _HALF_TO_FULL.get(ch)
            if full is None:
                continue
            before, after = _neighbour(chars, i, -1), _neighbour(chars, i, +1)
            if ch == ":" and after == "/":  # keep URLs such as http://
                continue
            if ch == "," and before.isdigit() and after.isdigit():  # 1,000
                continue
            if is_cjk(before) or is_cjk(after):
                chars[i] = full
        if chars == before_pass:
            break
    out: list[str] = []
    n = len(chars)
    i = 0
    while i < n:
        ch = chars[i]
        if ch == " ":
            prev = out[-1] if out else ""
            nxt = chars[i + 1] if i + 1 < n else ""
            if prev and nxt and not is_cjk(prev) and not is_cjk(nxt):
                out.append(" ")
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def squash(value: object) -> str:
    """Normalised text with every space removed: the key used to compare names and headers."""
    return normalize_text(value).replace(" ", "")


# --------------------------------------------------------------------------- units

_SEPARATORS = set(" ,，、;；/\n")
_UNIT_SUFFIXES = (
    "政府", "部门", "单位", "中心", "管委会", "委员会", "办公室", "公司", "集团", "银行", "协会", "联合会",
    "街道", "局", "委", "办", "厅", "部", "署", "院", "所", "站", "队", "处", "科", "室", "会", "社", "馆",
    "台", "团", "县", "区", "市", "镇", "乡", "村", "组", "司",
    # Offices also task bodies such as 市营商办工作专班, 南平海关, 人行南平市中心支行, 金融机构, 各社区.
    "机构", "专班", "海关", "人行", "行", "指挥部", "社区", "园区", "学校", "医院", "联", "党校",
)
# What offices write after the names and is not a name: 「等」「等市有关单位」「负责落实」 and a full stop.
_UNIT_TAIL_RE = re.compile(
    r"(?:等(?:[省市县区]?直?(?:各|其他)?(?:有关|相关)?(?:单位|部门))?|(?:负责|牵头)?(?:抓好)?落实|负责)$"
)
# 「各县、市、区政府」 is one collective name, written with enumeration commas: keep it whole.
_COLLECTIVE_RE = re.compile(r"各\s*县\s*[、，,]\s*市\s*[、，,]\s*区")
_FRAGMENT_SUFFIXES = {"政府", "人民政府", "部门", "单位", "局", "委", "办", "中心"}
# A bracket holding only a kind of body belongs to the name: 各乡镇（街道）, 各县（区）.
_KIND_WORDS = {"街道", "乡镇", "镇", "乡", "社区", "村居", "村", "区", "县", "市", "市、区", "县、区", "县、市", "园区"}


def _tokenise(raw: str) -> list[str]:
    """Split a unit cell on separators that stand outside brackets."""
    text = unicodedata.normalize("NFC", raw).translate(_FULLWIDTH_ALNUM)
    text = _WS_RE.sub(" ", text).strip()
    text = _COLLECTIVE_RE.sub("各县\x00市\x00区", text)
    # Spaces just inside brackets are wrap artefacts: "( 负责 )" -> "(负责)".
    text = re.sub(r"([(（\[【〔])\s+", r"\1", text)
    text = re.sub(r"\s+([)）\]】〕])", r"\1", text)
    tokens: list[str] = []
    buf: list[str] = []
    depth = 0
    for ch in text:
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth = max(0, depth - 1)
        if depth == 0 and ch in _SEPARATORS:
            if buf:
                tokens.append("".join(buf))
                buf = []
            continue
        buf.append(ch)
    if buf:
        tokens.append("".join(buf))
    # Re-join what a line wrap split: "各县 (市、区) 政府" -> one name.
    joined: list[str] = []
    for tok in tokens:
        if joined and (
            tok[0] in _OPEN
            or len(tok) == 1
            or (joined[-1][-1] in _CLOSE and tok in _FRAGMENT_SUFFIXES)
        ):
            joined[-1] += tok
        else:
            joined.append(tok)
    return [tok.replace("\x00", "、") for tok in joined]


def _strip_tail(name: str) -> str:
    """``市财政局等`` → ``市财政局``; ``各县（市、区）政府负责落实。`` → ``各县（市、区）政府``; ``等`` → ````."""
    while True:
        stripped = name.rstrip("。.；;，,")
        m = _UNIT_TAIL_RE.search(stripped)
        if m and (m.start() >= 2 or m.start() == 0):
            stripped = stripped[: m.start()]
        if stripped == name:
            return name
        name = stripped


def split_units(raw: object) -> list[tuple[str, str | None]]:
    """Split a unit cell into ``(name, scope note)`` pairs.

    ``各县（市、区）政府`` stays one name; ``市司法局（负责市政府规章）`` gives the unit 市司法局 with the
    note 负责市政府规章 (a trailing parenthetical is a scope note).
    """
    if raw is None:
        return []
    out: list[tuple[str, str | None]] = []
    for tok in _tokenise(str(raw)):
        name = _strip_tail(squash(tok))
        if not name:
            continue
        note = None
        m = re.fullmatch(r"(.+?)（([^（）]*)）", name)
        if m and m.group(2) in _KIND_WORDS:  # 各乡镇（街道）: one name, not a scope note
            m = None
        if m and m.group(1) and not m.group(1).endswith(("（", "(")):
            name, note = m.group(1), m.group(2) or None
        out.append((name, note))
    return out


_ROLE_RE = re.compile(r"(牵头|配合|参与|协同|协助)$")


def parse_unit_cell(
    raw: object,
) -> tuple[list[tuple[str, str | None]], list[tuple[str, str | None]], list[tuple[str, str | None]]]:
    """Split a unit cell into (marked lead, marked partners, unmarked), honouring ``A牵头，B配合``.

    Units written with 牵头 are leads whatever the column; units written with 配合/参与/协同/协助
    are responsible whatever the column; units with no marker take the column's meaning, which
    the caller decides.
    """
    if raw is None:
        return [], [], []
    text = str(raw)
    if not re.search(r"牵头|配合|参与|协同|协助", re.sub(r"[（(][^）)]*[）)]", "", text)):
        return [], [], split_units(text)
    lead: list[tuple[str, str | None]] = []
    partners: list[tuple[str, str | None]] = []
    plain: list[tuple[str, str | None]] = []
    # Split into clauses at ，；。 outside brackets, then read the role at the end of each clause.
    depth = 0
    clauses: list[str] = []
    buf = ""
    for ch in text:
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth = max(0, depth - 1)
        if depth == 0 and ch in ",，;；。\n":
            clauses.append(buf)
            buf = ""
        else:
            buf += ch
    clauses.append(buf)
    for clause in clauses:
        clause = clause.strip()
        if not clause:
            continue
        m = _ROLE_RE.search(clause.replace(" ", ""))
        if m:
            body = re.sub(r"(牵头|配合|参与|协同|协助)\s*$", "", clause.strip())
            (lead if m.group(1) == "牵头" else partners).extend(split_units(body))
        else:
            plain.extend(split_units(clause))
    return lead, partners, plain


def looks_like_units(raw: object) -> bool:
    """Does this cell hold unit names (as opposed to requirement prose or a status)?"""
    text = squash(raw).rstrip("。")
    if not text or "。" in text or len(text) > 120:
        return False
    lead, partners, plain = parse_unit_cell(raw)
    units = lead + partners + plain
    if not units:
        return False
    for name, _note in units:
        if len(name) > 25 or not name.endswith(_UNIT_SUFFIXES):
            return False
        if normalize_status(name) is not None:
            return False
    return True


# --------------------------------------------------------------------------- status

#: The canonical answers a unit can give, in dropdown order.
STATUS_OPTIONS = ("已完成", "推进中", "未启动", "不适用")

_STATUS_SYNONYMS = {
    "已完成": ("已完成", "完成", "已办结", "办结", "已落实", "落实", "已完成了", "全部完成", "已全部完成", "完成了",
              "已按期完成", "按期完成", "基本完成", "已结办", "已完结"),
    "推进中": ("推进中", "进行中", "正在推进", "正在进行", "推进", "持续推进", "部分完成", "正在落实", "落实中",
              "办理中", "正在办理", "已部分完成", "部分落实", "已启动", "持续推进中", "长期坚持"),
    "未启动": ("未启动", "未开始", "尚未启动", "尚未开始", "未开展", "未落实"),
    "不适用": ("不适用", "不涉及", "无此项", "无此项工作", "不适合"),
}
_STATUS_LOOKUP = {syn: canon for canon, syns in _STATUS_SYNONYMS.items() for syn in syns}


def normalize_status(value: object, extra: dict[str, str] | None = None) -> str | None:
    """Map a typed status to one of :data:`STATUS_OPTIONS`; ``None`` when it is not a status.

    Trailing punctuation and spaces are ignored (``已完成。`` is 已完成).  ``extra`` maps more
    spellings (from config or a custom template) to canonical values.
    """
    text = squash(value).strip("。.，,；;！!、 ")
    if not text:
        return None
    if extra and text in extra:
        return extra[text]
    return _STATUS_LOOKUP.get(text)


@functools.lru_cache(maxsize=1024)
def _canonical(text: str) -> str | None:
    if text in STATUS_OPTIONS:
        return text
    return normalize_status(text)


def canonical_status(option: object) -> str | None:
    """Which of :data:`STATUS_OPTIONS` a status option (possibly renamed by the office) counts as.

    The template may rename or add dropdown options (已办结, 部分完成); the ledger, the report
    and the reminders count in the four canonical statuses, so every option must map to one.
    """
    if isinstance(option, str) and option in STATUS_OPTIONS:  # the common case, no normalising
        return option
    return _canonical(squash(option))


def task_list(numbers: Iterable[int], limit: int | None = None) -> str:
    """「第1、3、5项」, or 「第1、2、…、20项等34项」 past ``limit``: task numbers read as one phrase
    (the receipt, the notice)."""
    shown = sorted(set(numbers))
    if limit is None or len(shown) <= limit:
        return f"第{'、'.join(map(str, shown))}项"
    return f"第{'、'.join(map(str, shown[:limit]))}项等{len(shown)}项"
