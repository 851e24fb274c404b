#!/usr/bin/env python3
"""profile_misses.py: the parsing and the report of tests/load/profile_misses.sh (run by it).

  profile_misses.py symbols OUT.tsv HTTP_OBJ_DIRS LOOP_OBJ_DIRS
      "bucket<TAB>symbol" for every function defined in the object files (nm -C) under the
      directories (colon-separated): the HTTP layer's and the stream/loop's, to bucket
      profile symbols by.
  profile_misses.py symbols-examples OUT.tsv EXAMPLE_OBJ_DIR...
      appends the examples' own functions (http_responder's to the HTTP layer, the others' to
      stream/loop).
  profile_misses.py perf SYMBOLS.tsv PERF_REPORT.txt OUT.json
      a flat `perf report --no-children --sort dso,sym` (tab-separated) into buckets and top
      symbols.
  profile_misses.py callgrind SYMBOLS.tsv CALLGRIND.OUT OUT.json
      a callgrind dump: total Ir, Ir by bucket (self cost), calls to malloc/free/new/delete.
  profile_misses.py heaptrack BASE_LEAKS.txt LEAKS.txt RSS_PROBE.out IDLE OUT.json
      `heaptrack_print --print-leaks` of a server made to exit while holding IDLE idle
      connections (so "leaked" = live) minus one ended so with none: bytes and allocations
      by allocation site; with the VmRSS growth per connection of a plain run.
  profile_misses.py report DIR TOP LOADS SERVERS IDLE_CONNECTIONS
      the Markdown report from DIR's JSON files (printed).
"""
import json
import os
import re
import subprocess
import sys

BUCKETS = ["kernel", "malloc/free", "libhttp_parser", "ioloop HTTP", "ioloop stream/loop", "other"]
MALLOC_RE = re.compile(
    r"^(?:__GI_)?(?:__libc_|_int_)?(?:malloc|free|realloc|calloc|memalign)(?:_\w+)?$"
    r"|^(?:malloc_consolidate|unlink_chunk|sysmalloc|cfree|tcache_\w+|_int_free_\w+)"
    r"|^operator (?:new|delete)")
ALLOC_CALLS = {  # callee name in callgrind -> counted as
    "malloc": "malloc", "__libc_malloc": "malloc", "calloc": "malloc", "realloc": "realloc",
    "free": "free", "__libc_free": "free", "cfree": "free",
}


def load_symbols(path):
    table = {}
    with open(path) as f:
        for line in f:
            bucket, _, sym = line.rstrip("\n").partition("\t")
            key = norm(sym)  # as perf prints it
            if table.get(key, bucket) != bucket:
                table[key] = "both"
            else:
                table[key] = bucket
    # An inline or template function instantiated by both layers' objects: by its name.
    for key, bucket in table.items():
        if bucket == "both":
            table[key] = ("ioloop HTTP" if re.search(r"HTTP|[Hh]ttp|Request|Response", key)
                          else "ioloop stream/loop")
    return table


def strip_clone(sym):
    return re.sub(r"(?: \[clone [^\]]*\])+$", "", sym)


def norm(sym):
    """A symbol as flat `perf report` prints it: no parameter list, no return type, no clone
    suffix (nm -C and callgrind print all three)."""
    s = strip_clone(sym).strip()
    s = re.sub(r"(?:\s+(?:const|volatile|&&|&|noexcept))+$", "", s)
    if s.endswith(")") and not s.startswith("operator"):
        depth = 0
        for i in range(len(s) - 1, -1, -1):
            if s[i] == ")":
                depth += 1
            elif s[i] == "(":
                depth -= 1
                if depth == 0:
                    if i > 0 and not s[:i].endswith("operator"):
                        s = s[:i]
                    break
    depth, cut = 0, -1
    for i, ch in enumerate(s):
        if ch in "<({[":
            depth += 1
        elif ch in ">)}]":
            depth -= 1
        elif ch == " " and depth == 0 and not s[:i].endswith("operator"):
            cut = i
    return s[cut + 1:] if cut >= 0 else s


def classify(table, dso, sym):
    s = re.sub(r"@.*$", "", strip_clone(sym))
    if "kernel" in dso or dso.startswith("[") and dso not in ("[unknown]", "[heap]"):
        return "kernel"
    if MALLOC_RE.search(s) and ("libc" in dso or "libstdc++" in dso or dso == "?"):
        return "malloc/free"
    if "http_parser" in dso or s.startswith("http_parser_") or s.startswith("http_should"):
        return "libhttp_parser"
    if norm(s) in table:
        return table[norm(s)]
    if "ioloop::" in s:
        return "ioloop HTTP" if re.search(r"HTTP|Http|http", s) else "ioloop stream/loop"
    return "other"


def shorten(sym, width=80):
    """Template arguments and parameter lists folded, so that a symbol fits a table cell."""
    s = strip_clone(sym).replace("(anonymous namespace)::", "")
    out, depth = [], 0
    for ch in s:
        if ch == "<":
            if depth == 0:
                out.append("<…>")
            depth += 1
        elif ch == ">" and depth:
            depth -= 1
        elif depth == 0:
            out.append(ch)
    s = "".join(out)
    s = re.sub(r"\((?:[^()]|\([^()]*\))*\)", "()", s)
    s = s.replace("{lambda()#", "{lambda#")
    return s if len(s) <= width else s[: width - 1] + "…"


def defined_functions(objs, kinds):
    """The demangled names nm lists as defined in OBJS with a symbol type in KINDS."""
    text = subprocess.run(["nm", "-C", "--defined-only", *objs], check=True,
                          capture_output=True, text=True).stdout
    names = []
    for line in text.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in kinds:
            names.append(parts[2])
    return names


def cmd_symbols(out, http_dirs, loop_dirs):
    """HTTP_DIRS, LOOP_DIRS: colon-separated directories of object files."""
    rows = []
    for bucket, dirs in (("ioloop HTTP", http_dirs.split(":")),
                         ("ioloop stream/loop", loop_dirs.split(":"))):
        objs = []
        for d in dirs:
            for root, _, files in os.walk(d):
                objs += [os.path.join(root, f) for f in files if f.endswith(".o")]
        if not objs:
            sys.exit(f"profile_misses.py: no object files under {' '.join(dirs)}")
        rows += [f"{bucket}\t{name}" for name in defined_functions(objs, "tTwWiu")]
    with open(out, "w") as f:
        f.write("\n".join(rows) + "\n")


def cmd_symbols_examples(out, *dirs):
    """Appends an example's own functions (t, T: its lambdas, main) to OUT, in the bucket of
    the layer it drives (http_responder: HTTP; echo_server: stream/loop); not its weak
    symbols, which are ioloop's inline functions instantiated there."""
    rows = []
    for d in dirs:
        bucket = "ioloop HTTP" if "http" in os.path.basename(d.rstrip("/")) else \
            "ioloop stream/loop"
        objs = [os.path.join(r, f) for r, _, fs in os.walk(d) for f in fs if f.endswith(".o")]
        if not objs:
            continue
        rows += [f"{bucket}\t{name}" for name in defined_functions(objs, "tT")]
    with open(out, "a") as f:
        f.write("\n".join(rows) + "\n")


def cmd_perf(symbols, report, out):
    table = load_symbols(symbols)
    buckets = dict.fromkeys(BUCKETS, 0.0)
    syms = []
    with open(report) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            parts = [p.strip() for p in line.rstrip("\n").split("\t")]
            if len(parts) < 3:
                continue
            pct = float(parts[0].rstrip("%"))
            dso, sym = parts[1], parts[2]
            kind = "k" if sym.startswith("[k]") else "."
            sym = re.sub(r"^\[.\]\s*", "", sym)
            bucket = classify(table, dso if kind == "." else "[kernel]", sym)
            buckets[bucket] += pct
            syms.append({"pct": pct, "dso": dso, "sym": sym, "bucket": bucket})
    syms.sort(key=lambda s: -s["pct"])
    json.dump({"buckets": buckets, "symbols": syms[:40]}, open(out, "w"))


def cmd_callgrind(symbols, path, out):
    table = load_symbols(symbols)
    # Compressed names: "(id) name" the first time, "(id)" after; fn/cfn share the ids, and
    # so do ob/cob.
    names = {"fn": {}, "ob": {}}
    total = 0
    self_ir = {}
    calls = {}
    allocators = {}
    fn = ob = None
    cfn = None
    after_calls = False

    def name(space, value):
        m = re.match(r"\((\d+)\)(?:\s+(.*))?$", value)
        if not m:
            return value
        if m.group(2) is not None:
            names[space][m.group(1)] = m.group(2)
        return names[space].get(m.group(1), "?")

    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                if after_calls:
                    after_calls = False
                    continue
                fields = line.split()
                if len(fields) >= 2:
                    ir = int(fields[1])
                    self_ir[(ob, fn)] = self_ir.get((ob, fn), 0) + ir
                continue
            key, _, value = line.partition("=")
            if key == "fn":
                fn = name("fn", value)
            elif key == "ob":
                ob = name("ob", value)
            elif key == "cob":
                name("ob", value)
            elif key == "cfn":
                cfn = name("fn", value)
            elif key == "calls":
                count = int(value.split()[0])
                what = ALLOC_CALLS.get(cfn)
                if what is None and cfn and cfn.startswith("operator new"):
                    what = "operator new"
                if what is None and cfn and cfn.startswith("operator delete"):
                    what = "operator delete"
                if what:
                    calls[what] = calls.get(what, 0) + count
                    # Who allocates: the callers of operator new, and of malloc other than
                    # operator new itself.
                    if what in ("operator new", "malloc", "realloc") and fn and \
                            not fn.startswith("operator new"):
                        allocators[fn] = allocators.get(fn, 0) + count
                after_calls = True
            elif key in ("summary", "totals"):
                total = int(value.split()[0])
    buckets = dict.fromkeys(BUCKETS, 0)
    per_fn = []
    for (ob_, fn_), ir in self_ir.items():
        dso = os.path.basename(ob_ or "?")
        b = classify(table, dso, fn_ or "?")
        buckets[b] += ir
        per_fn.append((ir, fn_, b))
    per_fn.sort(reverse=True)
    top_alloc = sorted(allocators.items(), key=lambda x: -x[1])[:10]
    json.dump({"total": total or sum(buckets.values()), "buckets": buckets, "calls": calls,
               "allocators": [{"sym": k, "calls": v} for k, v in top_alloc],
               "top": [{"ir": ir, "sym": s, "bucket": b} for ir, s, b in per_fn[:25]]},
              open(out, "w"))


def parse_leaks(path):
    """`heaptrack_print --print-leaks` output: {top function: [bytes, calls, frames]}. Each
    site is "N leaked over M calls from" + its function, then its backtraces ("...from:")."""
    unit = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}
    text = open(path, errors="replace").read()
    start = text.find("MEMORY LEAKS")
    sites, cur, state = {}, None, None
    for line in text[start:].splitlines()[1:] if start >= 0 else []:
        m = re.match(r"^([\d.]+)([KMG]?)B? leaked over (\d+) calls from(:?)$", line.strip())
        if m and not line.startswith(" ") and not m.group(4):
            cur = [float(m.group(1)) * unit[m.group(2)], int(m.group(3)), []]
            state = "top"
            continue
        if m:  # a backtrace of the current site: keep the first one's frames
            state = "bt" if cur is not None and len(cur[2]) == 1 else "skip"
            continue
        if cur is None or not line.strip():
            continue
        s = line.strip()
        if s.startswith("at ") or s.startswith("in "):
            continue
        if state == "top":
            key = re.sub(r"0x[0-9a-f]+", "0x?", s)  # unresolved: the address moves (ASLR)
            if key in sites:  # the same function from another binary path: merge
                sites[key][0] += cur[0]
                sites[key][1] += cur[1]
                cur = sites[key]
                state = "skip"
            else:
                cur[2].append(s)
                sites[key] = cur
                state = "bt0"
        elif state == "bt" and len(cur[2]) < 12:
            cur[2].append(s)
        if line.startswith("total ") or line.startswith("suppressed"):
            break
    return sites


def cmd_heaptrack(base, conns, rss_probe, idle, out):
    """Live heap of a server ended while holding IDLE idle connections (CONNS) minus that of
    one ended with none (BASE), by allocation site; RSS_PROBE: `echo_client idle`'s output
    from a plain run ("rss_before rss_connected rss_after fds")."""
    b, c = parse_leaks(base), parse_leaks(conns)
    sites = []
    for key, (nbytes, calls, frames) in c.items():
        bb, bc = b.get(key, (0, 0, []))[:2]
        if nbytes - bb > 0 or calls - bc > 0:
            sites.append({"bytes": nbytes - bb, "calls": calls - bc, "frames": frames})
    before, _, after, *_ = (int(x) for x in open(rss_probe).read().split())
    json.dump({"sites": sites, "rss_per_conn": (after - before) / int(idle)}, open(out, "w"))


def site_name(frames):
    """The allocating function and, when it is not ioloop's, the first ioloop frame below."""
    if not frames:
        return "?"
    name = shorten(frames[0], 60)
    if "ioloop::" not in frames[0]:
        for f in frames[1:]:
            if "ioloop::" in f or f.startswith("main"):
                return f"{name} ← {shorten(f, 50)}"
    return name


LOAD_TITLE = {
    "keepalive": "HTTP keep-alive (`wrk -t1 -c$C`)",
    "pipelined": "HTTP pipelined x16 (`wrk -t1 -c$C -s pipeline.lua`)",
    "close": "HTTP connection per request (`wrk -t1 -c$C -H 'Connection: close'`)",
    "echo1": "Echo, 1 connection x 64 B (`echo_client load PORT 1 64`)",
    "echo100": "Echo, 100 connections x 64 B (`echo_client load PORT 100 64`)",
    "echo16k": "Echo, 10 connections x 16 KiB (`echo_client load PORT 10 16384`)",
}


def fmt(x, digits=2):
    return f"{x:,.{digits}f}"


def cmd_report(d, top, loads, servers, idle):
    idle = int(idle)
    top = int(top)
    loads, servers = loads.split(), servers.split()
    meta = json.load(open(os.path.join(d, "meta.json")))
    for load in loads:
        unit = "message" if load.startswith("echo") else "request"
        print(f"#### {LOAD_TITLE[load].replace('$C', str(meta['connections']))}")
        print()
        prof, cg, win = {}, {}, {}
        for s in servers:
            for kind, store in (("perf", prof), ("cg", cg), ("win", win)):
                p = os.path.join(d, f"{kind}.{load}.{s}.json")
                if os.path.exists(p):
                    store[s] = json.load(open(p))
        head = "| | " + " | ".join(
            f"{s}: share of CPU (µs per {unit}) | {s}: user instructions per {unit}"
            for s in servers) + " |"
        print(head)
        print("|---|" + "---:|---:|" * len(servers))
        row = [f"{unit}s in the perf window; CPU per {unit}"]
        for s in servers:
            w = win.get(s, {})
            row += [f"{w.get('count', 0):,} in {meta['seconds']} s; {fmt(w.get('us', 0))} µs",
                    f"{cg[s]['count']:,} {unit}s counted" if s in cg else "n/a"]
        print("| " + " | ".join(row) + " |")
        for b in BUCKETS:
            row = [b]
            for s in servers:
                pct = prof.get(s, {}).get("buckets", {}).get(b, 0.0)
                us = pct / 100 * win.get(s, {}).get("us", 0)
                row.append(f"{fmt(pct, 1)}% ({fmt(us)})")
                if b == "kernel":
                    row.append("—")
                elif s in cg and cg[s]["count"]:
                    row.append(f"{cg[s]['buckets'].get(b, 0) / cg[s]['count']:,.0f}")
                else:
                    row.append("n/a")
            print("| " + " | ".join(row) + " |")
        row = ["total"]
        for s in servers:
            row.append(f"100% ({fmt(win.get(s, {}).get('us', 0))})")
            row.append(f"**{cg[s]['total'] / cg[s]['count']:,.0f}**"
                       if s in cg and cg[s]["count"] else "n/a")
        print("| " + " | ".join(row) + " |")
        row = [f"malloc / free calls per {unit}"]
        for s in servers:
            row.append("")
            if s in cg and cg[s]["count"]:
                c, n = cg[s]["calls"], cg[s]["count"]
                row.append(f"{(c.get('malloc', 0) + c.get('realloc', 0)) / n:.2f} / "
                           f"{c.get('free', 0) / n:.2f}")
            else:
                row.append("n/a")
        print("| " + " | ".join(row) + " |")
        print()
        for s in servers:
            if s in cg and cg[s]["count"] and cg[s].get("allocators"):
                n = cg[s]["count"]
                shown = [f"`{shorten(a['sym'], 60)}` {a['calls'] / n:.2f}"
                         for a in cg[s]["allocators"] if a["calls"] / n >= 0.01][:6]
                if shown:
                    print(f"{s}: allocations per {unit} by caller of malloc / operator new "
                          f"(callgrind): {'; '.join(shown)}.")
                    print()
        print(f"Top {top} symbols by self time (perf, flat; [k]: kernel):")
        print()
        print("| # | " + " | ".join(f"{s}" for s in servers) + " |")
        print("|---:|" + "---|" * len(servers))
        for i in range(top):
            row = [str(i + 1)]
            for s in servers:
                syms = prof.get(s, {}).get("symbols", [])
                if i < len(syms):
                    x = syms[i]
                    tag = "[k] " if x["bucket"] == "kernel" else ""
                    row.append(f"{fmt(x['pct'], 1)}% {tag}`{shorten(x['sym'], 60)}`")
                else:
                    row.append("")
            print("| " + " | ".join(row) + " |")
        print()
    # memory
    for kind in ("http", "echo"):
        mems = {}
        for s in servers:
            p = os.path.join(d, f"mem.{kind}.{s}.json")
            if os.path.exists(p):
                mems[s] = json.load(open(p))
        if not mems:
            continue
        print(f"#### Memory per idle {kind} connection ({idle:,} connections, one "
              f"{'request' if kind == 'http' else '64-byte echo'} each)")
        print()
        for s, m in mems.items():
            n = int(idle)
            sites = sorted(m["sites"], key=lambda x: -x["bytes"])
            heap = sum(x["bytes"] for x in sites)
            print(f"{s}: live heap {fmt(heap / n, 0)} B per connection in "
                  f"{sum(x['calls'] for x in sites) / n:.2f} allocations "
                  f"(heaptrack: exit(0) while idle, minus an exit with none); "
                  f"VmRSS {fmt(m['rss_per_conn'], 0)} B per connection (a plain run, "
                  f"`echo_client idle`).")
            print()
            shown = [x for x in sites if x["bytes"] / n >= 1][:top]
            if shown:
                print("| allocation site (first frame in the server's own code) | bytes per "
                      "connection | allocations per connection |")
                print("|---|---:|---:|")
                for x in shown:
                    print(f"| `{site_name(x['frames'])}` | {fmt(x['bytes'] / n, 0)} | "
                          f"{x['calls'] / n:.2f} |")
                print()


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    {"symbols": cmd_symbols, "symbols-examples": cmd_symbols_examples, "perf": cmd_perf,
     "callgrind": cmd_callgrind, "heaptrack": cmd_heaptrack, "report": cmd_report}[cmd](*args)


if __name__ == "__main__":
    main()
