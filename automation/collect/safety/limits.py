"""What a returned file may be: the limits, the kinds collect reads, and how a file is refused.

Imported by both sides of the sandbox (the pre-checks in the worker, the pool in the parent);
nothing here parses anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Limits", "Refused", "ParseFailed", "SUPPORTED_SUFFIXES", "unsupported_reason", "SAVE_AS"]

#: What collect reads; everything else is quarantined as unsupported.
SUPPORTED_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods")

_OTHER_KINDS = {
    ".et": "WPS 表格专用格式（.et）", ".ett": "WPS 表格模板（.ett）", ".wps": "WPS 文字文档（.wps）",
    ".doc": "Word 文档（.doc）", ".docx": "Word 文档（.docx）", ".pdf": "PDF 文件", ".csv": "CSV 文本",
    ".txt": "文本文件", ".zip": "压缩包（.zip）", ".rar": "压缩包（.rar）", ".7z": "压缩包（.7z）",
    ".jpg": "图片", ".jpeg": "图片", ".png": "图片", ".ofd": "OFD 版式文件", ".numbers": "Numbers 表格",
    ".xltx": "Excel 模板（.xltx）", ".xlt": "Excel 模板（.xlt）", ".ots": "LibreOffice 模板（.ots）",
}

SAVE_AS = "请在 WPS/Excel 中打开后“另存为”.xlsx 或 .xls 格式再发送。"


def unsupported_reason(suffix: str) -> str:
    """The message for a file whose suffix collect does not read."""
    suffix = suffix.lower()
    kind = _OTHER_KINDS.get(suffix, f"“{suffix or '无扩展名'}”文件")
    return f"不支持的文件类型：{kind}，不是可回收的工作簿。{SAVE_AS}"



@dataclass(frozen=True)
class Limits:
    """Hard limits for one returned file (from ``[collect]`` in config.toml)."""

    max_file_bytes: int = 20 << 20
    max_uncompressed_bytes: int = 200 << 20
    max_ratio: float = 200.0
    max_rows: int = 20000
    max_cols: int = 200
    parse_memory_mb: int = 1024
    parse_timeout: float = 60.0

    @classmethod
    def from_config(cls, collect: Any) -> Limits:
        return cls(
            max_file_bytes=int(collect.max_file_mb * (1 << 20)),
            max_uncompressed_bytes=int(collect.max_uncompressed_mb * (1 << 20)),
            max_ratio=float(collect.max_ratio),
            max_rows=int(collect.max_rows),
            max_cols=int(collect.max_cols),
            parse_memory_mb=int(collect.parse_memory_mb),
            parse_timeout=float(collect.parse_timeout),
        )


class Refused(Exception):
    """A file that must not be parsed; ``reason`` is the office-readable message, ``code`` a tag."""

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class ParseFailed(Refused):
    """The parser itself failed, timed out or died on the file."""

