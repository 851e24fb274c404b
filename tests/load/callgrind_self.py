#!/usr/bin/env python3
"""callgrind_self.py: self cost per function, per request, of a callgrind dump.

  callgrind_self.py CALLGRIND.OUT REQUESTS [TOP] [EVENT]

For the dump instructions_per_request.sh keeps with CALLGRIND_OUT=FILE: callgrind_annotate
charges that dump (taken after `callgrind_control -z`) to __libc_start_main alone, so this sums
each function's own cost lines instead (the lines after a `calls=` line are the callee's
inclusive cost and are skipped). The script runs callgrind with uncompressed names, which this
needs. Prints the total and the TOP (default 60) functions by EVENT (default Ir; with
CACHE_SIM=1 also I1mr, D1mr, ...), per request, with every event the dump has.
"""
import collections
import re
import sys

NAME = re.compile(r"\((\d+)\)(?: (.*))?")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    path, requests = sys.argv[1], int(sys.argv[2])
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 60
    event = sys.argv[4] if len(sys.argv) > 4 else "Ir"
    events = ["Ir"]
    names = {}  # compressed id -> name, when the dump has them

    def name(token):
        m = NAME.match(token)
        if not m:
            return token
        if m.group(2):
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), token)

    cost = collections.defaultdict(lambda: [0] * len(events))
    fn, after_calls = None, False
    with open(path) as f:
        for line in f:
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith("fn="):
                fn = name(line[3:].rstrip("\n"))
            elif line.startswith("cfn="):
                name(line[4:].rstrip("\n"))
            elif line.startswith("calls="):
                after_calls = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                fields = line.split()[1:]  # the position, then one value per event
                if fields and not after_calls:
                    row = cost[fn]
                    for i, value in enumerate(fields[: len(events)]):
                        row[i] += int(value)
                after_calls = False
    k = events.index(event)
    totals = [sum(row[i] for row in cost.values()) for i in range(len(events))]
    print("per request: " + ", ".join(f"{e} {t / requests:.0f}" for e, t in zip(events, totals)))
    print("  ".join(f"{e:>9}" for e in events) + "  function")
    for function, row in sorted(cost.items(), key=lambda item: -item[1][k])[:top]:
        print("  ".join(f"{v / requests:9.1f}" for v in row) + f"  {function}")


if __name__ == "__main__":
    main()
