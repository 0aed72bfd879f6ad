#!/usr/bin/env python3
"""Fails when a source file reaches itself through `use crate::...` imports.

One file per job only helps a reader if the files form layers: a file that imports one which
imports it back (directly or around a loop) cannot be read or changed on its own. Checks the
page (src/) and every crate (crates/*/src/); prints each loop found.
"""
import glob
import os
import re
import sys


def modules(root):
    out = {}
    for path in glob.glob(os.path.join(root, "**", "*.rs"), recursive=True):
        rel = os.path.relpath(path, root)[:-3].replace(os.sep, "::")
        if rel.endswith("::mod"):
            rel = rel[: -len("::mod")]
        with open(path, encoding="utf-8") as f:
            # Comments (doc links included) name files without depending on them.
            out[rel] = re.sub(r"//[^\n]*", "", f.read())
    return out


def graph(mods):
    names = set(mods)
    g = {}
    for m, text in mods.items():
        deps = set()
        # `use crate::a::b::{...}` and paths written in place (`crate::a::f()`).
        for path in re.findall(r"crate::([A-Za-z_][A-Za-z0-9_:]*)", text):
            parts = path.split("::")
            for k in range(len(parts), 0, -1):
                cand = "::".join(parts[:k])
                if cand in names:
                    if cand != m:
                        deps.add(cand)
                    break
        g[m] = deps
    return g


def loops(g):
    """Strongly connected components of more than one file (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    roots = [os.path.join(repo, "src")] + sorted(glob.glob(os.path.join(repo, "crates", "*", "src")))
    bad = 0
    for root in roots:
        for comp in loops(graph(modules(root))):
            bad += 1
            print(f"{os.path.relpath(root, repo)}: these files import each other: {', '.join(comp)}")
    if bad:
        sys.exit(1)
    print(f"no import loops in {len(roots)} source trees")


if __name__ == "__main__":
    main()
