#!/usr/bin/env python3
"""Check the layering of src/ (src/README.md, "Layers").

Every module (src/es_*.c with its header, and event_store.c) says in its
first comment which layer it is in: "Layer N".  From the sources and the
built objects this script derives

  * the include graph: which module's header each file includes, and
  * the call graph: which module defines each es_* symbol a module's object
    file uses (nm),

and fails when a module includes or calls a module of its own layer or of a
higher one (so there is no cycle either), when a module declares no layer,
when a file other than es_compat.h tests PG_VERSION_NUM, or when it finds a
cycle anyway.  Prints the graph it checked.

    python3 scripts/check_layers.py [SRCDIR]     (after make)
"""
import collections
import glob
import os
import re
import subprocess
import sys

src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src")
src = os.path.abspath(src)
errors = []


def module_of(path):
    # event_store.h is the extension's shape (layer 0); event_store.c is the
    # module (layer 5)
    base = os.path.basename(path)
    return base if base == "event_store.h" else os.path.splitext(base)[0]


def first_comment(text):
    m = re.search(r"/\*(.*?)\*/", text, re.S)
    return m.group(1) if m else ""


# 1. the layer of every module, from its files' first comment
layers = {}
files = sorted(glob.glob(os.path.join(src, "*.c")) + glob.glob(os.path.join(src, "*.h")))
for path in files:
    text = open(path, encoding="utf-8").read()
    m = re.search(r"\bLayer (\d)\b", first_comment(text))
    mod = module_of(path)
    if not m:
        errors.append(f"{os.path.basename(path)}: its first comment names no layer (\"Layer N\")")
        continue
    layer = int(m.group(1))
    if layers.setdefault(mod, layer) != layer:
        errors.append(f"{mod}: its .c and .h name different layers ({layers[mod]}, {layer})")

# 2. includes: a file includes only headers of lower layers (and its own)
includes = collections.defaultdict(set)
for path in files:
    mod = module_of(path)
    text = open(path, encoding="utf-8").read()
    for inc in re.findall(r'^#include\s+"([^"]+)\.h"', text, re.M):
        inc = "event_store.h" if inc == "event_store" else inc
        if inc == mod or inc not in layers:
            continue
        includes[mod].add(inc)
    if mod != "es_compat" and re.search(r"\bPG_VERSION_NUM\b", text):
        errors.append(f"{os.path.basename(path)}: tests PG_VERSION_NUM (only es_compat.h may)")

# 3. calls: the es_* symbols each object uses, and who defines them
defined = {}
used = collections.defaultdict(set)
objects = sorted(glob.glob(os.path.join(src, "*.o")))
if not objects:
    errors.append(f"no object files in {src}: run make first")
for obj in objects:
    mod = module_of(obj)
    out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TDBRC":
            defined[parts[2]] = mod
        elif len(parts) == 2 and parts[0] == "U":
            used[mod].add(parts[1])
calls = collections.defaultdict(set)
for mod, symbols in used.items():
    for sym in symbols:
        target = defined.get(sym)
        if target is not None and target != mod:
            calls[mod].add(target)


# header-only modules (event_store.h, es_compat.h) hold definitions, no code:
# any module may include them; they include no module
with_code = {module_of(p) for p in glob.glob(os.path.join(src, "*.c"))}
header_only = {m for m in layers if m not in with_code}
for mod in sorted(header_only):
    for dep in sorted(includes.get(mod, ())):
        errors.append(f"{mod} is header-only and includes {dep}: it may include no module")


def check(kind, graph):
    for mod in sorted(graph):
        for dep in sorted(graph[mod]):
            if mod not in layers or dep not in layers or dep in header_only:
                continue
            if layers[dep] >= layers[mod]:
                errors.append(f"{mod} (layer {layers[mod]}) {kind} {dep} (layer {layers[dep]}): "
                              "a module uses only modules of lower layers")


check("includes", includes)
check("calls", calls)

# 4. no cycle (implied by the above, checked anyway)
graph = collections.defaultdict(set)
for g in (includes, calls):
    for mod, deps in g.items():
        graph[mod] |= deps
state = {}


def visit(mod, stack):
    state[mod] = 1
    for dep in sorted(graph.get(mod, ())):
        if state.get(dep) == 1:
            errors.append("cycle: " + " -> ".join(stack + [mod, dep]))
        elif dep not in state:
            visit(dep, stack + [mod])
    state[mod] = 2


for mod in sorted(graph):
    if mod not in state:
        visit(mod, [])

for layer in sorted(set(layers.values())):
    mods = sorted(m + (" (header only)" if m in header_only else "")
                  for m, l in layers.items() if l == layer)
    print(f"layer {layer}: {' '.join(mods)}")
for mod in sorted(calls, key=lambda m: (-layers.get(m, 9), m)):
    print(f"  {mod} calls {' '.join(sorted(calls[mod]))}")

if errors:
    for e in errors:
        print("error: " + e, file=sys.stderr)
    sys.exit(1)
print(f"ok: {len(layers)} modules, {sum(len(v) for v in calls.values())} call edges, "
      f"{sum(len(v) for v in includes.values())} include edges, no upward or same-layer use, no cycle")
