"""report.py: the tables and chart scripts of tests/load/compare/run.sh (issue 10).

    report.py RESULTS SYSCALLS RSS CLK_TCK COUNTER WORK_DIR CHART_DIR "HTTP SERVERS"
              "ECHO SERVERS" IDLE_CONNECTIONS

RESULTS: "kind load round server count rate errors ticks bytes_per_s" lines (tab-separated;
kind http or echo; count: requests or messages; ticks: the server's utime + stime delta over
the run). SYSCALLS: "kind load server calls count" lines, one window per server and load. RSS:
"kind server rss_before rss_connected rss_after server_fds" lines. Prints the Markdown tables
(medians with min-max over the rounds; each ratio to the floor is taken within its round, then
the median of those is shown) and writes WORK_DIR/compare-KIND-LOAD.{dat,gp}: gnuplot scripts
drawing CHART_DIR/compare-KIND-LOAD.png.
"""
import collections
import os
import statistics
import sys

LABEL = {
    "floor": "floor (epoll C, `floor.c`)",
    "libevent": "libevent (bufferevent)",
    "libuv": "libuv",
    "asio": "Boost.Asio (1 thread)",
    "nginx": "nginx (`return 200`)",
    "tornado": "Tornado (RequestHandler)",
    "ioloop": "ioloop `http_responder`",
}
ECHO_LABEL = dict(LABEL, ioloop="ioloop `echo_server`")
LOAD_TITLE = {
    "keepalive": "HTTP keep-alive (`wrk -t1 -c64`)",
    "pipelined": "HTTP pipelined x16 (`wrk -t1 -c64 -s pipeline.lua`: 16 requests per write)",
    "close": "HTTP connection per request (`wrk -t1 -c64 -H 'Connection: close'`)",
    "1x64": "Echo, 1 connection x 64 B ping-pong (`echo_client load PORT 1 64`)",
    "100x64": "Echo, 100 connections x 64 B ping-pong (`echo_client load PORT 100 64`)",
    "10x16k": "Echo, 10 connections x 16 KiB ping-pong (`echo_client load PORT 10 16384`)",
}


def spread(values, fmt):
    if not values:
        return "n/a"
    med, lo, hi = statistics.median(values), min(values), max(values)
    if len(values) == 1:
        return fmt.format(med)
    return f"{fmt.format(med)} ({fmt.format(lo)}–{fmt.format(hi)})"


def ratios(rounds, floor, key):
    return [v[key] / floor[r][key] for r, v in rounds.items() if r in floor and floor[r][key] > 0]


def main():
    results, syscalls, rss, clk_tck, counter, work, charts = sys.argv[1:8]
    servers = {"http": sys.argv[8].split(), "echo": sys.argv[9].split()}
    idle_connections = int(sys.argv[10])
    clk_tck = int(clk_tck)
    runs = collections.defaultdict(dict)  # (kind, load, server) -> round -> values
    loads = {"http": [], "echo": []}
    for line in open(results):
        kind, load, rnd, name, count, rate, errors, ticks, bytes_s = line.rstrip("\n").split("\t")
        if load not in loads[kind]:
            loads[kind].append(load)
        count = int(count)
        runs[(kind, load, name)][int(rnd)] = {
            "count": count,
            "rate": float(rate),
            "mbs": float(bytes_s) / 1e6,
            "errors": int(errors),
            "cpu_us": int(ticks) * 1e6 / clk_tck / max(count, 1),
        }
    sys_per = {}
    for line in open(syscalls):
        kind, load, name, calls, count = line.split()
        sys_per[(kind, load, name)] = int(calls) / max(int(count), 1)

    for kind in ("http", "echo"):
        unit = "request" if kind == "http" else "message"
        label = LABEL if kind == "http" else ECHO_LABEL
        for load in loads[kind]:
            print(f"## {LOAD_TITLE.get(load, load)}")
            print()
            if kind == "http":
                print("| server (one thread, CPU 0) | requests/s | ×floor | server CPU per request "
                      "| CPU ×floor | syscalls per request | wrk errors |")
                print("|---|---:|---:|---:|---:|---:|---:|")
            else:
                print("| server (one thread, CPU 0) | messages/s | ×floor | MB/s echoed | "
                      "server CPU per message | CPU ×floor | syscalls per message |")
                print("|---|---:|---:|---:|---:|---:|---:|")
            dat = []
            for name in servers[kind]:
                rounds = runs[(kind, load, name)]
                floor = runs.get((kind, load, "floor"), {})
                rate = [v["rate"] for v in rounds.values()]
                cpu = [v["cpu_us"] for v in rounds.values()]
                sc = sys_per.get((kind, load, name))
                cells = [label.get(name, name), spread(rate, "{:,.0f}"),
                         spread(ratios(rounds, floor, "rate"), "{:.2f}")]
                if kind == "echo":
                    cells.append(spread([v["mbs"] for v in rounds.values()], "{:,.1f}"))
                cells += [spread(cpu, "{:.2f}") + " µs",
                          spread(ratios(rounds, floor, "cpu_us"), "{:.2f}"),
                          "n/a" if sc is None else f"{sc:.2f}"]
                if kind == "http":
                    cells.append(str(sum(v["errors"] for v in rounds.values())))
                print("| " + " | ".join(cells) + " |")
                if cpu:
                    dat.append((name, statistics.median(cpu), min(cpu), max(cpu),
                                statistics.median(rate), min(rate), max(rate)))
            print()
            write_chart(work, charts, kind, load, unit, dat)

    n_rounds = max((len(r) for r in runs.values()), default=0)
    how = ("perf stat -e raw_syscalls:sys_enter -p PID" if counter == "perf"
           else "strace -c -f -p PID (ptrace: fewer requests in the window, so wrk's connection "
           "setups weigh more per request)")
    print(f"Median (min–max) over {n_rounds} interleaved round(s); each ratio to the floor is "
          "taken within a round. Server CPU per request or message: utime + stime of the server "
          "process (every thread, /proc/PID/stat) over the run ÷ the requests wrk counted or the "
          "messages `echo_client` got back (every byte checked). Syscalls: one separate window "
          f"per server and load, {how}, total ÷ requests or messages.")
    print()
    print("The floor, libevent, libuv and Asio share `scanner.h`: a request is whatever ends in "
          "`\\r\\n\\r\\n`, answered with a canned response; nginx, Tornado and ioloop parse "
          "HTTP.")
    print()
    print_rss(rss, servers, idle_connections)


def print_rss(path, servers, n):
    rows = [line.split() for line in open(path)]
    if not rows:
        return
    print(f"## Memory per idle connection ({n:,} connections, one request each)")
    print()
    print("A fresh server each; `echo_client idle` opens the connections, then sends one request "
          "each (HTTP GET / or a 64-byte echo) and waits for every answer. The server's VmRSS "
          "(user-space memory only: the kernel's socket buffers are not in it) before, with all "
          "connected, and after the answers, with the connections open and idle.")
    print()
    print("| server | kind | RSS before | per connection, connected | per connection, after "
          "one request | ×floor | connections held |")
    print("|---|---|---:|---:|---:|---:|---:|")
    floor = {r[0]: (int(r[4]) - int(r[2])) / n for r in rows if r[1] == "floor"}
    for kind, name, before, connected, after, fds in rows:
        per_c = (int(connected) - int(before)) / n
        per_a = (int(after) - int(before)) / n
        ratio = f"{per_a / floor[kind]:.1f}" if floor.get(kind) else "n/a"
        label = (LABEL if kind == "http" else ECHO_LABEL).get(name, name)
        held = int(fds)  # minus the listener and a few of the server's own fds
        print(f"| {label} | {kind} | {int(before) / 2**20:.1f} MiB | {per_c:,.0f} B | "
              f"{per_a:,.0f} B | {ratio} | {held:,} fds |")
    print()


def write_chart(work, charts, kind, load, unit, dat):
    base = os.path.join(work, f"compare-{kind}-{load}")
    with open(base + ".dat", "w") as f:
        for row in dat:
            f.write(f"{row[0]} " + " ".join(f"{x:.4f}" for x in row[1:]) + "\n")
    png = os.path.join(charts, f"compare-{kind}-{load}.png")
    title = LOAD_TITLE.get(load, load).split(" (")[0]
    # Log scale only where Tornado is (10 to 300 times the others: linear, they would vanish).
    log = any(row[0] == "tornado" for row in dat)
    scale = "set logscale y" if log else "set yrange [0:*]"
    note = "log scale, " if log else ""
    with open(base + ".gp", "w") as f:
        f.write(f"""set terminal pngcairo size 1100,420 font ",10" noenhanced
set output "{png}"
set multiplot layout 1,2 title "{title}: median and min-max over the rounds, server on one CPU"
set style data histogram
set style histogram errorbars gap 1 lw 1
set style fill solid 0.6 border -1
set boxwidth 0.8
set grid ytics
{scale}
set xtics rotate by -30
unset key
set title "server CPU per {unit} (µs, {note}lower is better)"
plot "{base}.dat" using 2:3:4:xtic(1) lc rgb "#4477aa"
set title "{unit}s/s ({note}higher is better)"
plot "{base}.dat" using 5:6:7:xtic(1) lc rgb "#228833"
unset multiplot
""")


if __name__ == "__main__":
    main()
