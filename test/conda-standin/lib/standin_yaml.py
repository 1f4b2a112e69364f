"""A small, strict parser for the subset of YAML that conda environment files use.

Supported: block mappings with plain keys, block sequences (indented under their key or at the
key's own indentation, as PyYAML writes them), `- key: value` mappings inside sequences,
single-line flow sequences (`[a, 'b', "c"]`), plain / single-quoted / double-quoted scalars,
`#` comments, blank lines and a leading `---`. Everything else (anchors, tags, block scalars,
flow mappings, multi-line scalars, tabs) is rejected with a YAMLSubsetError naming the line.
All scalars stay strings, except `null`, `~` and empty values, which become None.
"""
import re


class YAMLSubsetError(ValueError):
    pass


_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*:(?:[ \t]+(.*))?$")
_SEQ = re.compile(r"^-(?:[ ]+(.*))?$")
_UNSUPPORTED_START = "&*!|>%@`{?"
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "n": "\n", "t": "\t", "r": "\r", "0": "\0", " ": " "}


def parse(text, source="<yaml>"):
    lines = []
    for no, raw in enumerate(text.splitlines(), 1):
        body = raw.rstrip()
        stripped = body.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("\t") or "\t" in body[: len(body) - len(stripped)]:
            raise YAMLSubsetError(f"{source}:{no}: tabs are not allowed in indentation")
        if not lines and stripped == "---":
            continue
        if stripped in ("---", "...") and len(stripped) == len(body):
            raise YAMLSubsetError(f"{source}:{no}: multiple YAML documents are not supported")
        lines.append([no, len(body) - len(stripped), stripped])
    if not lines:
        return None
    p = _Parser(lines, source)
    value = p.block(lines[0][1])
    if p.i < len(lines):
        p.fail("unexpected content (bad indentation?)")
    return value


class _Parser:
    def __init__(self, lines, source):
        self.lines, self.source, self.i = lines, source, 0

    def fail(self, msg, line=None):
        no = (line or self.lines[min(self.i, len(self.lines) - 1)])[0]
        raise YAMLSubsetError(f"{self.source}:{no}: {msg}")

    def block(self, indent):
        if _SEQ.match(self.lines[self.i][2]):
            return self.sequence(indent)
        return self.mapping(indent)

    def mapping(self, indent):
        result = {}
        while self.i < len(self.lines):
            line = self.lines[self.i]
            no, ind, content = line
            if ind < indent:
                break
            if ind > indent:
                self.fail("unexpected indentation")
            if _SEQ.match(content):
                break  # a sequence at this level belongs to an enclosing construct
            m = _KEY.match(content)
            if not m:
                self.fail(f"expected 'key: value', got {content!r}")
            key, rest = m.group(1), m.group(2)
            if key in result:
                self.fail(f"duplicate key {key!r}")
            self.i += 1
            value = scalar_or_flow(rest, self, line)
            if value is _BLOCK:
                value = self.nested(indent, allow_same_indent_seq=True)
            result[key] = value
        return result

    def sequence(self, indent):
        result = []
        while self.i < len(self.lines):
            line = self.lines[self.i]
            no, ind, content = line
            if ind < indent:
                break
            if ind > indent:
                self.fail("unexpected indentation")
            m = _SEQ.match(content)
            if not m:
                break
            rest = (m.group(1) or "").strip()
            if rest and not rest.startswith("#") and (_KEY.match(rest) or _SEQ.match(rest)):
                # `- key: value` (or `- - x`): re-read the rest of this line as a nested block
                # whose column is where the text after the dash starts.
                line[1] = ind + len(content) - len(content[1:].lstrip(" "))
                line[2] = rest
                result.append(self.block(line[1]))
                continue
            self.i += 1
            value = scalar_or_flow(rest, self, line)
            if value is _BLOCK:
                value = self.nested(indent, allow_same_indent_seq=False)
            result.append(value)
        return result

    def nested(self, indent, allow_same_indent_seq):
        if self.i < len(self.lines):
            ind, content = self.lines[self.i][1], self.lines[self.i][2]
            if ind > indent or (allow_same_indent_seq and ind == indent and _SEQ.match(content)):
                return self.block(ind)
        return None


_BLOCK = object()  # marker: the value is on the following lines


def scalar_or_flow(text, parser, line):
    text = (text or "").strip()
    if not text or text.startswith("#"):
        return _BLOCK
    if text[0] == "[":
        return _flow_sequence(text, parser, line)
    value, rest = _scalar(text, parser, line, flow=False)
    if rest.strip() and not rest.strip().startswith("#"):
        parser.fail(f"unexpected text after value: {rest.strip()!r}", line)
    return value


def _scalar(text, parser, line, flow):
    """Parse one scalar at the start of text; return (value, remaining text)."""
    c = text[0]
    if c in "'\"":
        return _quoted(text, parser, line)
    if c in _UNSUPPORTED_START or (c == "-" and text[1:2] in ("", " ")):
        parser.fail(f"unsupported YAML construct (anchor, tag, block scalar, flow mapping, "
                    f"nested sequence or complex key): {text!r}", line)
    stops = ",]" if flow else ""
    end = len(text)
    for j, ch in enumerate(text):
        if ch in stops or (ch == "#" and j > 0 and text[j - 1] in " \t"):
            end = j
            break
    value = text[:end].rstrip()
    if ": " in value or value.endswith(":"):
        parser.fail(f"unexpected mapping in {value!r} (quote the value?)", line)
    if value in ("~", "null", "Null", "NULL"):
        value = None
    return value, text[end:]


def _quoted(text, parser, line):
    q, out, j = text[0], [], 1
    while j < len(text):
        ch = text[j]
        if q == "'" and ch == "'":
            if text[j + 1:j + 2] == "'":
                out.append("'")
                j += 2
                continue
            return "".join(out), text[j + 1:]
        if q == '"' and ch == '"':
            return "".join(out), text[j + 1:]
        if q == '"' and ch == "\\":
            esc = text[j + 1:j + 2]
            if esc in _ESCAPES:
                out.append(_ESCAPES[esc])
                j += 2
                continue
            if esc in ("x", "u", "U"):
                width = {"x": 2, "u": 4, "U": 8}[esc]
                digits = text[j + 2:j + 2 + width]
                if re.fullmatch(r"[0-9A-Fa-f]{%d}" % width, digits):
                    out.append(chr(int(digits, 16)))
                    j += 2 + width
                    continue
            parser.fail(f"unsupported escape in double-quoted string: {text!r}", line)
        out.append(ch)
        j += 1
    parser.fail(f"unterminated quoted string (multi-line strings are not supported): {text!r}", line)


def _flow_sequence(text, parser, line):
    items, rest = [], text[1:].lstrip()
    if rest.startswith("]"):
        rest = rest[1:]
    else:
        while True:
            if not rest:
                parser.fail("unterminated flow sequence (multi-line flow sequences are not "
                            "supported)", line)
            if rest[0] == "[":
                parser.fail("nested flow sequences are not supported", line)
            value, rest = _scalar(rest, parser, line, flow=True)
            items.append(value)
            rest = rest.lstrip()
            if rest.startswith(","):
                rest = rest[1:].lstrip()
                if rest.startswith("]"):  # trailing comma
                    rest = rest[1:]
                    break
            elif rest.startswith("]"):
                rest = rest[1:]
                break
            else:
                parser.fail(f"expected ',' or ']' in flow sequence: {text!r}", line)
    if rest.strip() and not rest.strip().startswith("#"):
        parser.fail(f"unexpected text after flow sequence: {rest.strip()!r}", line)
    return items


def load_env_file(path):
    """Read a conda environment file and check its shape.

    Returns {'name': str|None, 'channels': [str], 'dependencies': [str], 'pip': [str]|None}.
    """
    with open(path, encoding="utf-8") as f:
        doc = parse(f.read(), path)
    if not isinstance(doc, dict):
        raise YAMLSubsetError(f"{path}: expected a mapping with name/channels/dependencies")
    unknown = sorted(set(doc) - {"name", "channels", "dependencies", "prefix"})
    if unknown:
        raise YAMLSubsetError(f"{path}: unsupported key(s) for the conda stand-in: {', '.join(unknown)}"
                              " (supported: name, channels, dependencies, prefix)")
    name, channels, deps = doc.get("name"), doc.get("channels") or [], doc.get("dependencies") or []
    if name is not None and not isinstance(name, str):
        raise YAMLSubsetError(f"{path}: 'name' must be a string")
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise YAMLSubsetError(f"{path}: 'channels' must be a list of strings")
    if not isinstance(deps, list):
        raise YAMLSubsetError(f"{path}: 'dependencies' must be a list")
    conda_deps, pip = [], None
    for dep in deps:
        if isinstance(dep, str):
            conda_deps.append(dep)
        elif isinstance(dep, dict) and list(dep) == ["pip"]:
            if pip is not None:
                raise YAMLSubsetError(f"{path}: more than one 'pip:' section")
            reqs = dep["pip"] or []
            if not isinstance(reqs, list) or not all(isinstance(r, str) for r in reqs):
                raise YAMLSubsetError(f"{path}: 'pip:' must be a list of requirement strings")
            pip = reqs
        else:
            raise YAMLSubsetError(f"{path}: invalid dependency {dep!r}: must be a string or "
                                  "a 'pip:' mapping with a list")
    return {"name": name, "channels": channels, "dependencies": conda_deps, "pip": pip}
