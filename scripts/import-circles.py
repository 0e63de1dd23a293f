#!/usr/bin/env python3
"""Lists import circles between sibling modules of src/ (a uses b and b uses a, neither
inside the other) and exits 1 if there is one. Reads `crate::`/`super::` paths outside
comments and test modules; a module's parent or child does not count."""
import glob
import re
import sys

mods = {}
for f in glob.glob("src/**/*.rs", recursive=True):
    path = f[4:-3].replace("/", "::")
    path = path[: -len("::mod")] if path.endswith("::mod") else path
    mods["crate" if path in ("lib", "main") else path] = open(f).read()


def resolve(cur, used):
    """The module a `crate::…`/`super::…` path names, from module `cur`."""
    parts = used.split("::")
    base = [] if cur == "crate" else cur.split("::")
    if parts[0] == "crate":
        parts, base = parts[1:], []
    while parts and parts[0] == "super":
        base, parts = base[:-1], parts[1:]
    full = base + parts
    for i in range(len(full), 0, -1):
        if "::".join(full[:i]) in mods:
            return "::".join(full[:i])
    return None


edges = set()
for m, src in mods.items():
    code = src.split("#[cfg(test)]")[0]
    code = "\n".join(l for l in code.split("\n") if not l.strip().startswith("//"))
    for used in re.findall(r"\b(?:crate|super)(?:::\w+)+", code):
        target = resolve(m, used)
        if target and target != m:
            edges.add((m, target))


def nested(a, b):
    return "crate" in (a, b) or a.startswith(b + "::") or b.startswith(a + "::")


circles = [(a, b) for a, b in sorted(edges) if a < b and (b, a) in edges and not nested(a, b)]
for a, b in circles:
    print(f"import circle: {a} <-> {b}")
sys.exit(1 if circles else 0)
