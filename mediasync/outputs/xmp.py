"""XMP sidecars: mediasync's fields merged into whatever the sidecar already holds.

Ours: ``dc:description`` (the caption, x-default), keywords in ``dc:subject``
and optionally ``Iptc4xmpCore:AltTextAccessibility``. Everything else
(darktable's history, ratings, a person's tags, namespaces, the xpacket
wrapper) is kept as it was.

Ownership is per field and travels inside the sidecar: ``mediasync:*``
properties hold the SHA-256 of the description and alt text we wrote, and the
keywords we added. A field whose text no longer hashes to ours was edited by
its owner (or was there before us) and is kept; another tool rewriting the
file does not freeze our fields. The same marks are remembered outside the file
(``Marks``, kept in the store by the caller): a tool that regenerates the XMP
from its own database (darktable) drops our marks, and the remembered ones then
still say which caption and keywords were ours. The existing file is parsed with
``defusedxml`` (no entities, no DTDs); a file that is not XMP is refused,
never replaced. Pure: bytes in, text out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from xml.dom import Node
from xml.dom.minidom import Document, Element

NS_X = "adobe:ns:meta/"
NS_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
NS_DC = "http://purl.org/dc/elements/1.1/"
NS_IPTC = "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/"
NS_XML = "http://www.w3.org/XML/1998/namespace"
NS_MS = "http://ns.mediasync.invalid/xmp/1.0/"
PREFIXES = {NS_RDF: "rdf", NS_DC: "dc", NS_IPTC: "Iptc4xmpCore", NS_MS: "mediasync",
            NS_X: "x"}

EMPTY = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
    f'<x:xmpmeta xmlns:x="{NS_X}" x:xmptk="mediasync">\n'
    f' <rdf:RDF xmlns:rdf="{NS_RDF}">\n'
    '  <rdf:Description rdf:about=""/>\n'
    " </rdf:RDF>\n"
    "</x:xmpmeta>\n"
    '<?xpacket end="w"?>'
)


class NotXmp(ValueError):
    """The file there is not an XMP sidecar we can merge into; it is left alone."""


@dataclass(frozen=True)
class Fields:
    caption: str
    keywords: tuple[str, ...] = ()
    alt_text: str | None = None


@dataclass(frozen=True)
class Marks:
    """What mediasync last wrote into a sidecar: hashes of its texts, its keywords."""
    description: str | None = None
    alt_text: str | None = None
    keywords: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps({"description": self.description, "altText": self.alt_text,
                           "keywords": list(self.keywords)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | None) -> Marks | None:
        try:
            value = json.loads(text or "")
        except json.JSONDecodeError:
            return None
        if not isinstance(value, dict):
            return None

        def sha(key: str) -> str | None:
            v = value.get(key)
            return v if isinstance(v, str) else None

        words = value.get("keywords")
        return cls(sha("description"), sha("altText"),
                   tuple(w for w in words if isinstance(w, str))
                   if isinstance(words, list) else ())


@dataclass(frozen=True)
class Merged:
    text: str
    kept: tuple[str, ...]  # our fields the owner had written: left as they were
    marks: Marks = Marks()  # what is ours in ``text``: for the caller to remember


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _parse(data: bytes | None) -> Document:
    from defusedxml import DefusedXmlException
    from defusedxml.minidom import parseString

    source = data if data is not None and data.strip() else EMPTY.encode("utf-8")
    try:
        doc = parseString(source, forbid_dtd=True)
    except DefusedXmlException as e:
        raise NotXmp(f"refused: it declares a DTD or entities ({type(e).__name__})") from None
    except Exception as e:  # noqa: BLE001 - expat's errors have no common base
        raise NotXmp(f"not well-formed XML ({e})") from None
    root = doc.documentElement
    if (root.namespaceURI, root.localName) not in _ROOTS:
        raise NotXmp(f"its root element is <{root.tagName}>, not <x:xmpmeta> or <rdf:RDF>")
    return doc


# <x:xapmeta> is the root older Adobe tools (Photoshop CS, XMP SDK 1) wrote.
_ROOTS = ((NS_X, "xmpmeta"), (NS_X, "xapmeta"), (NS_RDF, "RDF"))


def _children(el: Element, ns: str, name: str) -> list[Element]:
    return [c for c in el.childNodes
            if c.nodeType == Node.ELEMENT_NODE and c.namespaceURI == ns and c.localName == name]


def _rdf(doc: Document) -> Element:
    root = doc.documentElement
    if root.namespaceURI == NS_RDF:
        return root
    found = _children(root, NS_RDF, "RDF")
    if not found:
        raise NotXmp("it has no <rdf:RDF> inside <x:xmpmeta>")
    return found[0]


def _find(rdf: Element, ns: str, name: str) -> tuple[Element | None, Element | None]:
    """(the rdf:Description holding property ns:name, the property element)."""
    for desc in _children(rdf, NS_RDF, "Description"):
        props = _children(desc, ns, name)
        if props:
            return desc, props[0]
        if desc.hasAttributeNS(ns, name):
            return desc, None  # the simple attribute form
    return None, None


def _description(doc: Document, rdf: Element) -> Element:
    descs = _children(rdf, NS_RDF, "Description")
    if descs:
        return descs[0]
    rdf_prefix = _prefix(rdf, NS_RDF)
    desc = doc.createElementNS(NS_RDF, f"{rdf_prefix}:Description")
    desc.setAttributeNS(NS_RDF, f"{rdf_prefix}:about", "")
    rdf.appendChild(desc)
    return desc


def _bindings(el: Element) -> dict[str, str]:
    """The namespace prefixes in scope at ``el`` (the innermost binding wins)."""
    found: dict[str, str] = {}
    node: Node | None = el
    while node is not None and node.nodeType == Node.ELEMENT_NODE:
        attrs = node.attributes  # type: ignore[attr-defined]
        for i in range(attrs.length):
            a = attrs.item(i)
            if a.name.startswith("xmlns:"):
                found.setdefault(a.name[6:], a.value)
        node = node.parentNode
    return found


def _prefix(el: Element, ns: str) -> str:
    """A prefix for ``ns`` on ``el``, declared there if need be (minidom does not on
    output): one already bound to it in scope, else ours. Never a prefix the owner
    bound to another namespace: rebinding it would move the owner's elements into
    ours (an owner's ``dc`` that is not Dublin Core stays theirs)."""
    scope = _bindings(el)
    for prefix, uri in scope.items():
        if uri == ns:
            return prefix
    base = PREFIXES[ns]
    prefix, n = base, 1
    while prefix in scope:
        prefix, n = f"{base}{n}", n + 1
    el.setAttribute(f"xmlns:{prefix}", ns)
    return prefix


def _text(el: Element) -> str:
    return "".join(n.data for n in el.childNodes if n.nodeType in (Node.TEXT_NODE,
                                                                    Node.CDATA_SECTION_NODE))


def _items(prop: Element | None, container: str) -> list[Element]:
    if prop is None:
        return []
    out: list[Element] = []
    for c in _children(prop, NS_RDF, container):
        out += _children(c, NS_RDF, "li")
    return out


def _lang_alt(prop: Element | None) -> str | None:
    """The x-default (else first) text of an rdf:Alt property."""
    items = _items(prop, "Alt")
    for li in items:
        if li.getAttributeNS(NS_XML, "lang") == "x-default":
            return _text(li)
    return _text(items[0]) if items else (_text(prop).strip() or None if prop else None)


def _new_prop(doc: Document, desc: Element, ns: str, name: str, container: str) -> Element:
    prop = doc.createElementNS(ns, f"{_prefix(desc, ns)}:{name}")
    prop.appendChild(_rdf_element(doc, desc, container))
    desc.appendChild(prop)
    return prop


def _rdf_element(doc: Document, where: Element, name: str) -> Element:
    return doc.createElementNS(NS_RDF, f"{_prefix(where, NS_RDF)}:{name}")


def _set_lang_alt(doc: Document, rdf: Element, ns: str, name: str, value: str) -> None:
    desc, prop = _find(rdf, ns, name)
    if desc is not None and prop is None:
        desc.removeAttributeNS(ns, name)  # attribute form: replace by the Alt structure
    if prop is None:
        prop = _new_prop(doc, desc or _description(doc, rdf), ns, name, "Alt")
    alts = _children(prop, NS_RDF, "Alt")
    if not alts:
        for c in list(prop.childNodes):
            prop.removeChild(c)
        prop.appendChild(_rdf_element(doc, prop, "Alt"))
        alts = _children(prop, NS_RDF, "Alt")
    alt = alts[0]
    target = None
    for li in _children(alt, NS_RDF, "li"):
        if li.getAttributeNS(NS_XML, "lang") == "x-default":
            target = li
    if target is None:
        target = _rdf_element(doc, alt, "li")
        target.setAttributeNS(NS_XML, "xml:lang", "x-default")
        alt.insertBefore(target, alt.firstChild)
    for c in list(target.childNodes):
        target.removeChild(c)
    target.appendChild(doc.createTextNode(value))


def _get_mark(rdf: Element, name: str) -> str | None:
    for desc in _children(rdf, NS_RDF, "Description"):
        if desc.hasAttributeNS(NS_MS, name):
            return desc.getAttributeNS(NS_MS, name)
        props = _children(desc, NS_MS, name)
        if props:
            return _text(props[0]).strip()
    return None


def _set_mark(doc: Document, rdf: Element, name: str, value: str) -> None:
    for desc in _children(rdf, NS_RDF, "Description"):
        if desc.hasAttributeNS(NS_MS, name):
            desc.removeAttributeNS(NS_MS, name)
        for p in _children(desc, NS_MS, name):
            desc.removeChild(p)
    desc = _description(doc, rdf)
    desc.setAttributeNS(NS_MS, f"{_prefix(desc, NS_MS)}:{name}", value)


def _owned_text(doc: Document, rdf: Element, ns: str, name: str, mark: str,
                value: str, remembered: str | None) -> str | None:
    """Write a lang-alt field unless its owner wrote it; the hash of what is ours
    there now (None: the owner's field was kept). ``remembered`` stands in for the
    mark when the file lost it (a tool rewrote the file from its own database)."""
    desc, prop = _find(rdf, ns, name)
    # A simple attribute (dc:description="…", not strictly XMP) is text all the same.
    current = desc.getAttributeNS(ns, name) if desc is not None and prop is None else (
        _lang_alt(prop))
    ours = _get_mark(rdf, mark) or remembered
    if current is not None and current.strip() and (ours is None or _sha(current) != ours):
        return None  # edited since we wrote it, or there before us: the owner's
    _set_lang_alt(doc, rdf, ns, name, value)
    _set_mark(doc, rdf, mark, _sha(value))
    return _sha(value)


def _keywords(doc: Document, rdf: Element, keywords: Sequence[str],
              remembered: Sequence[str]) -> tuple[str, ...]:
    """dc:subject keeps every tag but the ones we added last time; ours are added anew.
    Returns the ones added (ours). ``remembered``: ours last time, when the file lost
    the mark (else they would count as the owner's and pile up)."""
    desc, prop = _find(rdf, NS_DC, "subject")
    mark = _get_mark(rdf, "keywords")
    previous = set(_json_list(mark) if mark is not None else remembered)
    if prop is None:
        if desc is not None:  # a lone keyword as an attribute: becomes the bag's first item
            first = desc.getAttributeNS(NS_DC, "subject")
            desc.removeAttributeNS(NS_DC, "subject")
        else:
            first = ""
        prop = _new_prop(doc, desc or _description(doc, rdf), NS_DC, "subject", "Bag")
        if first:
            bag = _children(prop, NS_RDF, "Bag")[0]
            li = _rdf_element(doc, bag, "li")
            li.appendChild(doc.createTextNode(first))
            bag.appendChild(li)
    containers = (_children(prop, NS_RDF, "Bag") or _children(prop, NS_RDF, "Seq"))
    if not containers:
        prop.appendChild(_rdf_element(doc, prop, "Bag"))
        containers = _children(prop, NS_RDF, "Bag")
    bag = containers[0]
    kept: list[str] = []
    for li in _children(bag, NS_RDF, "li"):
        word = _text(li)
        if word in previous:
            bag.removeChild(li)
        else:
            kept.append(word)
    added: list[str] = []
    for word in keywords:
        word = " ".join(word.split())
        if word and word not in kept and word not in added:
            li = _rdf_element(doc, bag, "li")
            li.appendChild(doc.createTextNode(word))
            bag.appendChild(li)
            added.append(word)
    # JSON, not newlines: XML parsers fold whitespace in attribute values.
    _set_mark(doc, rdf, "keywords", json.dumps(added, ensure_ascii=False))
    return tuple(added)


def _json_list(text: str | None) -> list[str]:
    try:
        value = json.loads(text or "[]")
    except json.JSONDecodeError:
        return []
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def merge(existing: bytes | None, fields: Fields, source: str | None = None,
          remembered: Marks | None = None) -> Merged:
    """The sidecar with our fields set where they are still ours. Raises NotXmp.

    ``source`` is the media file's name, recorded so that a stem-named sidecar
    (photo.xmp) shared by photo.jpg and photo.heic is not taken over by the other.
    ``remembered``: the marks of our last write, for a file that lost its own.
    """
    doc = _parse(existing)
    rdf = _rdf(doc)
    root = doc.documentElement
    if (root.namespaceURI, root.localName) == (NS_X, "xapmeta"):
        # The old name, read only by tools that also read the new one; exiv2 does not
        # know a file that starts with it (without an xpacket) as XMP at all.
        doc.renameNode(root, NS_X, f"{root.prefix}:xmpmeta" if root.prefix else "xmpmeta")
    old = remembered or Marks()
    if source is not None:
        _set_mark(doc, rdf, "source", source)
    kept: list[str] = []
    description = _owned_text(doc, rdf, NS_DC, "description", "description",
                              fields.caption, old.description)
    if description is None:
        kept.append("dc:description")
    alt = None
    if fields.alt_text is not None:
        alt = _owned_text(doc, rdf, NS_IPTC, "AltTextAccessibility", "altText",
                          fields.alt_text, old.alt_text)
        if alt is None:
            kept.append("Iptc4xmpCore:AltTextAccessibility")
    added = _keywords(doc, rdf, fields.keywords, old.keywords)
    return Merged(_serialize(doc), tuple(kept), Marks(description, alt, added))


def _serialize(doc: Document) -> str:
    # toxml() keeps the xpacket processing instructions around the root element.
    parts = []
    for node in doc.childNodes:
        if node.nodeType == Node.DOCUMENT_TYPE_NODE:
            continue
        parts.append(node.toxml())
    return "\n".join(parts) + "\n"


def check(data: bytes | None) -> None:
    """Raises NotXmp unless ``data`` (None: no file yet) is XMP we can merge into."""
    _rdf(_parse(data))


def source_of(data: bytes) -> str | None:
    """The media file whose fields mediasync last wrote into this sidecar."""
    try:
        return _get_mark(_rdf(_parse(data)), "source")
    except NotXmp:
        return None


def read_fields(data: bytes) -> tuple[str | None, list[str]]:
    """(description, keywords) of a sidecar, for status and tests."""
    doc = _parse(data)
    rdf = _rdf(doc)
    _, desc = _find(rdf, NS_DC, "description")
    _, subj = _find(rdf, NS_DC, "subject")
    return _lang_alt(desc), [_text(li) for li in _items(subj, "Bag") + _items(subj, "Seq")]
