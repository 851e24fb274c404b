"""report.py: the tables and chart scripts of tests/load/compare/run.sh (issue 10).

    report.py RESULTS SYSCALLS CLK_TCK COUNTER WORK_DIR CHART_DIR SERVER...

RESULTS: "kind load round server requests requests_per_s errors ticks" lines (tab-separated;
ticks: the server's utime + stime delta over the run). SYSCALLS: "load server calls requests"
lines, one window per server and load. Prints the Markdown tables (medians with min-max over
the rounds; each ratio to the floor is taken within its round, then the median of those is
shown) and writes WORK_DIR/compare-http-LOAD.{dat,gp}: gnuplot scripts drawing
CHART_DIR/compare-http-LOAD.png.
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
LOAD_TITLE = {
    "keepalive": "HTTP keep-alive (`wrk -t1 -c64`)",
    "pipelined": "HTTP pipelined x16 (`wrk -t1 -c64 -s pipeline.lua`: 16 requests per write)",
    "close": "HTTP connection per request (`wrk -t1 -c64 -H 'Connection: close'`)",
}


def spread(values, fmt):
    if not values:
        return "n/a"
    med, lo, hi = statistics.median(values), min(values), max(values)
    if len(values) == 1:
        return fmt.format(med)
    return f"{fmt.format(med)} ({fmt.format(lo)}–{fmt.format(hi)})"


def main():
    results, syscalls, clk_tck, counter, work, charts = sys.argv[1:7]
    clk_tck = int(clk_tck)
    servers = sys.argv[7:]
    # (load, server) -> round -> values
    runs = collections.defaultdict(dict)
    loads = []
    for line in open(results):
        kind, load, rnd, name, requests, rps, errors, ticks = line.rstrip("\n").split("\t")
        if load not in loads:
            loads.append(load)
        requests = int(requests)
        runs[(load, name)][int(rnd)] = {
            "requests": requests,
            "rps": float(rps),
            "errors": int(errors),
            "cpu_us": int(ticks) * 1e6 / clk_tck / max(requests, 1),
        }
    sys_per_request = {}
    for line in open(syscalls):
        load, name, calls, requests = line.split()
        sys_per_request[(load, name)] = int(calls) / max(int(requests), 1)

    for load in loads:
        print(f"## {LOAD_TITLE.get(load, load)}")
        print()
        print("| server (one thread, CPU 0) | requests/s | req/s ×floor | server CPU per request "
              "| CPU ×floor | syscalls per request | wrk errors |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        dat = []
        for name in servers:
            rounds = runs[(load, name)]
            floor = runs.get((load, "floor"), {})
            rps = [v["rps"] for v in rounds.values()]
            cpu = [v["cpu_us"] for v in rounds.values()]
            rps_ratio = [v["rps"] / floor[r]["rps"] for r, v in rounds.items()
                         if r in floor and floor[r]["rps"] > 0]
            cpu_ratio = [v["cpu_us"] / floor[r]["cpu_us"] for r, v in rounds.items()
                         if r in floor and floor[r]["cpu_us"] > 0]
            sc = sys_per_request.get((load, name))
            print(f"| {LABEL.get(name, name)} | {spread(rps, '{:,.0f}')} | "
                  f"{spread(rps_ratio, '{:.2f}')} | {spread(cpu, '{:.2f}')} µs | "
                  f"{spread(cpu_ratio, '{:.2f}')} | "
                  f"{'n/a' if sc is None else f'{sc:.2f}'} | "
                  f"{sum(v['errors'] for v in rounds.values())} |")
            if cpu:
                dat.append((name, statistics.median(cpu), min(cpu), max(cpu),
                            statistics.median(rps), min(rps), max(rps)))
        print()
        write_chart(work, charts, load, dat)

    n_rounds = max((len(r) for r in runs.values()), default=0)
    how = ("perf stat -e raw_syscalls:sys_enter -p PID" if counter == "perf"
           else "strace -c -f -p PID (ptrace: fewer requests in the window, so wrk's connection "
           "setups weigh more per request)")
    print(f"Median (min–max) over {n_rounds} interleaved round(s); each ratio to the floor is "
          "taken within a round. Server CPU per request: utime + stime of the server process "
          "(every thread, /proc/PID/stat) over the run ÷ requests wrk counted. Syscalls per "
          f"request: one separate window per server and load, {how}, total ÷ requests.")
    print()
    print("The floor, libevent, libuv and Asio share `scanner.h`: a request is whatever ends in "
          "`\\r\\n\\r\\n`, answered with a canned response; nginx, Tornado and ioloop parse HTTP.")


def write_chart(work, charts, load, dat):
    base = os.path.join(work, f"compare-http-{load}")
    with open(base + ".dat", "w") as f:
        for row in dat:
            f.write(f"{row[0]} " + " ".join(f"{x:.4f}" for x in row[1:]) + "\n")
    png = os.path.join(charts, f"compare-http-{load}.png")
    title = LOAD_TITLE.get(load, load).split(" (")[0]
    with open(base + ".gp", "w") as f:
        f.write(f"""set terminal pngcairo size 1100,420 font ",10" noenhanced
set output "{png}"
set multiplot layout 1,2 title "{title}: median and min-max over the rounds, server on one CPU"
set style data histogram
set style histogram errorbars gap 1 lw 1
set style fill solid 0.6 border -1
set boxwidth 0.8
set grid ytics
set logscale y  # Tornado is 10 to 300 times the others: on a linear scale they vanish
set xtics rotate by -30
unset key
set title "server CPU per request (µs, log scale, lower is better)"
plot "{base}.dat" using 2:3:4:xtic(1) lc rgb "#4477aa"
set title "requests/s (log scale, higher is better)"
plot "{base}.dat" using 5:6:7:xtic(1) lc rgb "#228833"
unset multiplot
""")


if __name__ == "__main__":
    main()
