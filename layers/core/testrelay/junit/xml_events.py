"""A JUnit report's XML as ("start" | "end", element) events, read as a stream.

Like ElementTree.iterparse, but on expat directly so that a DOCTYPE (where entity bombs and external
entities live) is refused before it is read, and so that any encoding Python knows is read: expat itself
reads only UTF-8, UTF-16, ISO-8859-1 and US-ASCII (and, through Python, single-byte codecs), while real
reports also come in Shift_JIS, EUC-JP, GBK, Big5, EUC-KR or windows-125x. Such a report is decoded with
Python's incremental decoder, chunk by chunk, and handed to expat as UTF-8.
"""

from __future__ import annotations

import codecs
import re
import xml.etree.ElementTree as ET
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

Event = tuple[str, ET.Element]


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


def xml_events(stream: IO[bytes], text_of: frozenset[str]) -> Iterator[Event]:
    """Every element's start and end, in document order, as the stream is read. Elements keep their text
    only when their (local) name is in `text_of`: a case's megabytes of <system-out> or stack trace are
    never held. Raises InvalidPayload on a DOCTYPE or an encoding that cannot be read; expat.ExpatError
    on malformed XML."""
    head = _head(stream)
    decode = _decoder(head)
    # Given an encoding, expat ignores the declared one: the transcoded bytes are UTF-8.
    parser = expat.ParserCreate("UTF-8" if decode else None, namespace_separator="}")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    builder = ET.TreeBuilder()
    pending: list[Event] = []
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_doctype
    keeps_text: list[bool] = []

    def start(tag: str, attributes: dict[str, str]) -> None:
        keeps_text.append(tag.rsplit("}", 1)[-1] in text_of)
        pending.append(("start", builder.start(tag, attributes)))

    def end(tag: str) -> None:
        keeps_text.pop()
        pending.append(("end", builder.end(tag)))

    def data(text: str) -> None:
        if keeps_text and keeps_text[-1]:
            builder.data(text)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = data

    def feed(chunk: bytes, final: bool) -> None:
        data = decode(chunk, final).encode("utf-8") if decode else chunk
        try:
            parser.Parse(data, final)
        except (LookupError, ValueError) as exc:
            # expat met an encoding declaration it cannot use (e.g. after a UTF-16 byte order mark).
            raise InvalidPayload(f"JUnit report's encoding cannot be read: {exc}; write the report as UTF-8") from None

    chunk = head
    while chunk:
        feed(chunk, False)
        yield from pending
        pending.clear()
        chunk = stream.read(CHUNK)
    feed(b"", True)
    yield from pending
