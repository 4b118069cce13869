"""A JUnit report's XML fed to expat as a stream.

On expat directly, not ElementTree: no tree is built (the reader's handlers keep only what they need,
which is what makes the parse about as fast as a bare iterparse pass), a DOCTYPE (where entity bombs and
external entities live) is refused before it is read, and any encoding Python knows is read: expat itself
reads only UTF-8, UTF-16, ISO-8859-1 and US-ASCII (and, through Python, single-byte codecs), while real
reports also come in Shift_JIS, EUC-JP, GBK, Big5, EUC-KR or windows-125x. Such a report is decoded with
Python's incremental decoder, chunk by chunk, and handed to expat as UTF-8.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator
from typing import IO
from xml.parsers import expat

from testrelay.errors import InvalidPayload

CHUNK = 64 * 1024
DECLARATION_ROOM = 1024
# Encodings expat decodes itself, as codecs.lookup names them; every other one goes through Python.
_EXPAT_NATIVE = frozenset({"utf-8", "utf-16", "utf-16-le", "utf-16-be"})
# The encoding named in an ASCII-compatible XML declaration (after an optional UTF-8 BOM). A UTF-16
# report's declaration does not match, and needs no transcoding.
_DECLARED = re.compile(rb"^(?:\xef\xbb\xbf)?\s*<\?xml\s[^>]*?\bencoding\s*=\s*[\"']([^\"']{0,100})[\"']")


def _refuse_doctype(*_: object) -> None:
    raise InvalidPayload("JUnit report declares a DOCTYPE: reports never need one, and entities are not expanded")


def _decoder(head: bytes) -> Callable[[bytes, bool], str] | None:
    """The decoder of the report's declared encoding, when expat cannot read it itself."""
    declared = _DECLARED.match(head)
    if not declared:
        return None
    name = declared.group(1).decode("latin-1").strip()
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise InvalidPayload(
            f"JUnit report declares encoding {name!r}, which is not a known encoding; write the report as UTF-8"
        ) from None
    # Codecs such as base64 or rot13 are not text encodings; a report cannot be written in them.
    if not getattr(info, "_is_text_encoding", True) or info.incrementaldecoder is None:
        raise InvalidPayload(f"JUnit report declares encoding {name!r}, which is not a text encoding")
    if info.name in _EXPAT_NATIVE:
        return None
    decoder = info.incrementaldecoder(errors="strict")

    def decode(chunk: bytes, final: bool) -> str:
        try:
            return decoder.decode(chunk, final)
        except (UnicodeError, ValueError) as exc:
            # UnicodeDecodeError for bytes invalid in the encoding; plain UnicodeError from the odd codec
            # (punycode, "undefined") that can be named but cannot decode a document.
            reason = exc.reason if isinstance(exc, UnicodeDecodeError) else str(exc)
            raise InvalidPayload(f"JUnit report is not valid {name} (as it declares): {reason}") from None

    return decode


def _head(stream: IO[bytes]) -> bytes:
    """The first chunk, long enough to hold the XML declaration even from a stream that reads short."""
    head = stream.read(CHUNK)
    while head and len(head) < DECLARATION_ROOM:
        more = stream.read(CHUNK)
        if not more:
            break
        head += more
    return head


class XmlStream:
    """A report's bytes fed to an expat parser chunk by chunk (`chunks`), the caller's handlers set on
    `parser`. Handlers run inside expat, with no element tree built: the reader keeps what it needs of
    each element and no more (a case's megabytes of <system-out> or stack trace are never held), and
    sets `parser.CharacterDataHandler` only while it wants an element's text. Raises InvalidPayload on
    a DOCTYPE or an encoding that cannot be read; `chunks` raises expat.ExpatError on malformed XML."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._head = _head(stream)
        self._decode = _decoder(self._head)
        # Given an encoding, expat ignores the declared one: the transcoded bytes are UTF-8.
        self.parser = expat.ParserCreate("UTF-8" if self._decode else None, namespace_separator="}")
        self.parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self.parser.StartDoctypeDeclHandler = _refuse_doctype
        self.parser.EntityDeclHandler = _refuse_doctype

    def _feed(self, chunk: bytes, final: bool) -> None:
        data = self._decode(chunk, final).encode("utf-8") if self._decode else chunk
        try:
            self.parser.Parse(data, final)
        except (LookupError, ValueError) as exc:
            # expat met an encoding declaration it cannot use (e.g. after a UTF-16 byte order mark).
            raise InvalidPayload(f"JUnit report's encoding cannot be read: {exc}; write the report as UTF-8") from None

    def chunks(self) -> Iterator[None]:
        """Feeds the report, one chunk at a time: after each, the handlers have seen everything in it."""
        chunk = self._head
        while chunk:
            self._feed(chunk, False)
            yield
            chunk = self._stream.read(CHUNK)
        self._feed(b"", True)
        yield
