"""The 情况通报 template: an ordinary Word document the office restyles in Word or WPS.

:func:`write_notice_template` writes ``templates/notice_template.docx``: A4 with the margins of
GB/T 9704 (党政机关公文格式), page numbers 「— 1 —」 at the foot, and styles named for what they hold —
「通报标题」 (小标宋/黑体 22 pt), 「文号」, 「正文」 (仿宋 16 pt, first line indented two characters, fixed
28 pt lines), 「一级标题」 (黑体), 「二级标题」 (楷体), 「落款」.  The office may change any style, any
fixed wording (主送, 下一步要求, 落款) or the order of the sections; the program only fills:

- paragraphs that are exactly a marker, e.g. ``{{总体情况}}``: replaced by generated paragraphs in
  the marker paragraph's style (markers: :data:`MARKERS`);
- placeholders inside any paragraph: ``{标题}`` ``{批次}`` ``{年度}`` ``{统计日期}`` ``{办公室}`` ``{简称}``
  ``{落款日期}``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["write_notice_template", "MARKERS", "PLACEHOLDERS"]

MARKERS = ("{{总体情况}}", "{{全部完成单位}}", "{{进度滞后单位}}", "{{未报送单位}}", "{{逾期任务}}", "{{单位排名}}")
PLACEHOLDERS = ("{标题}", "{批次}", "{年度}", "{统计日期}", "{办公室}", "{简称}", "{落款日期}")

_BODY = (
    ("通报标题", "{标题}"),
    ("文号", "{简称}〔{年度}〕　　号"),
    ("正文", "各有关单位："),
    ("正文", "按照{批次}的部署要求，{办公室}对各单位任务落实情况进行了跟踪督办。现将有关情况通报如下："),
    ("一级标题", "一、总体情况"),
    ("正文", "{{总体情况}}"),
    ("一级标题", "二、已全部完成任务的单位"),
    ("正文", "{{全部完成单位}}"),
    ("一级标题", "三、进度滞后的单位"),
    ("正文", "{{进度滞后单位}}"),
    ("一级标题", "四、未报送落实情况的单位"),
    ("正文", "{{未报送单位}}"),
    ("一级标题", "五、逾期未完成的任务"),
    ("正文", "{{逾期任务}}"),
    ("一级标题", "六、综合排名"),
    ("正文", "{{单位排名}}"),
    ("一级标题", "七、下一步要求"),
    ("正文", "（一）进度滞后的单位要对照任务清单逐项查找原因，明确时间节点，加快推进，确保按期完成。"),
    ("正文", "（二）未报送的单位要于 3 个工作日内报送落实情况，逾期未报的将提请督查室跟踪督办。"),
    ("正文", "（三）各单位报送落实情况时要如实填写工作进展及成效，选“已完成”的须写明完成情况，并一并报送佐证材料。"),
    ("正文", ""),
    ("落款", "{办公室}"),
    ("落款", "{落款日期}"),
)


def _font(style: object, east_asian: str, latin: str, size: float, bold: bool = False) -> None:
    from docx.oxml.ns import qn
    from docx.shared import Pt

    font = style.font  # type: ignore[attr-defined]
    font.name = latin
    font.size = Pt(size)
    font.bold = bold
    rpr = style.element.get_or_add_rPr()  # type: ignore[attr-defined]
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = rpr.makeelement(qn("w:rFonts"), {})
        rpr.append(fonts)
    fonts.set(qn("w:eastAsia"), east_asian)


def _page_number(paragraph: object) -> None:
    """「— PAGE —」 as a field Word, WPS and LibreOffice all update."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    paragraph.add_run("— ")  # type: ignore[attr-defined]
    run = paragraph.add_run()  # type: ignore[attr-defined]
    for kind, text in (("begin", None), (None, "PAGE"), ("separate", None), (None, "1"), ("end", None)):
        if kind:
            el = OxmlElement("w:fldChar")
            el.set(qn("w:fldCharType"), kind)
        elif text == "PAGE":
            el = OxmlElement("w:instrText")
            el.set(qn("xml:space"), "preserve")
            el.text = " PAGE "
        else:
            el = OxmlElement("w:t")
            el.text = text
        run._r.append(el)
    paragraph.add_run(" —")  # type: ignore[attr-defined]


def write_notice_template(path: Path) -> None:
    """Write the default 情况通报 template (atomically)."""
    import docx
    from docx.enum.style import WD_STYLE_TYPE
    from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
    from docx.shared import Cm, Pt

    from automation.fsutil import atomic_path

    document = docx.Document()
    section = document.sections[0]
    section.page_width, section.page_height = Cm(21), Cm(29.7)
    section.top_margin, section.bottom_margin = Cm(3.7), Cm(3.5)
    section.left_margin, section.right_margin = Cm(2.8), Cm(2.6)
    section.footer_distance = Cm(2.5)
    styles = document.styles
    normal = styles["Normal"]
    _font(normal, "仿宋", "Times New Roman", 16)
    specs = {
        "通报标题": ("方正小标宋简体", 22, False, WD_ALIGN_PARAGRAPH.CENTER, 0),
        "文号": ("仿宋", 16, False, WD_ALIGN_PARAGRAPH.CENTER, 0),
        "正文": ("仿宋", 16, False, WD_ALIGN_PARAGRAPH.JUSTIFY, 2),
        "一级标题": ("黑体", 16, False, WD_ALIGN_PARAGRAPH.LEFT, 2),
        "二级标题": ("楷体", 16, False, WD_ALIGN_PARAGRAPH.LEFT, 2),
        "落款": ("仿宋", 16, False, WD_ALIGN_PARAGRAPH.RIGHT, 0),
    }
    for name, (east, size, bold, align, indent) in specs.items():
        style = styles.add_style(name, WD_STYLE_TYPE.PARAGRAPH)
        style.base_style = normal
        _font(style, east, "Times New Roman", size, bold)
        fmt = style.paragraph_format
        fmt.alignment = align
        fmt.line_spacing_rule = WD_LINE_SPACING.EXACTLY
        fmt.line_spacing = Pt(36 if name == "通报标题" else 28)
        fmt.space_before = Pt(0)
        fmt.space_after = Pt(12 if name in ("通报标题", "文号") else 0)
        fmt.first_line_indent = Pt(size * indent) if indent else None
    for style_name, text in _BODY:
        document.add_paragraph(text, style=style_name)
    footer = section.footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _page_number(footer)
    with atomic_path(path) as tmp:
        document.core_properties.title = "情况通报模板"
        document.save(str(tmp))
