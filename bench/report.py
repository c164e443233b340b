#!/usr/bin/env python3
"""Turn bench/run.sh's raw results into markdown tables (stdout).

Usage: report.py RAW_DIR. RAW_DIR holds facts.env, measurements.tsv and the
fortio / ghz JSON files named in it.
"""
import csv
import json
import os
import statistics
import sys

# Targets on the 2-core reference machine (bench/README.md).
TARGET_ADDED_P99_MS = 0.5
TARGET_CPU_MS_PER_1K = 50.0
TARGET_RSS_MIB = 20.0


def load_facts(raw):
    facts = {}
    with open(os.path.join(raw, "facts.env")) as f:
        for line in f:
            line = line.rstrip("\n")
            if "=" in line:
                k, v = line.split("=", 1)
                facts[k] = v
    return facts


def fortio_stats(path):
    with open(path) as f:
        d = json.load(f)
    pct = {p["Percentile"]: p["Value"] * 1000.0 for p in d["DurationHistogram"]["Percentiles"]}
    count = d["DurationHistogram"]["Count"]
    ok = d.get("RetCodes", {}).get("200", 0)
    return {
        "count": count,
        "qps": d["ActualQPS"],
        "p50": pct.get(50),
        "p90": pct.get(90),
        "p99": pct.get(99),
        "errors": count - ok,
    }


def ghz_stats(path):
    with open(path) as f:
        d = json.load(f)
    pct = {p["percentage"]: p["latency"] / 1e6 for p in d.get("latencyDistribution") or []}
    codes = d.get("statusCodeDistribution") or {}
    return {
        "count": d["count"],
        "qps": d["rps"],
        "p50": pct.get(50),
        "p90": pct.get(90),
        "p99": pct.get(99),
        "errors": d["count"] - codes.get("OK", 0),
    }


def ms(v):
    return "n/a" if v is None else f"{v:.3f}"


def signed(v):
    return "n/a" if v is None else f"{v:+.3f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}×"


def main():
    raw = sys.argv[1]
    facts = load_facts(raw)
    clk = float(facts.get("clk_tck", "100"))
    rows = []
    with open(os.path.join(raw, "measurements.tsv")) as f:
        for m in csv.DictReader(f, delimiter="\t"):
            path = os.path.join(raw, m["file"] + ".json")
            st = ghz_stats(path) if m["phase"] == "grpc" else fortio_stats(path)
            st.update(m)
            st["cpu_c"] = int(m["ticks_client"]) * 1000.0 / clk  # ms
            st["cpu_s"] = int(m["ticks_server"]) * 1000.0 / clk
            rows.append(st)

    def agg(phase, target):
        rs = [r for r in rows if r["phase"] == phase and r["target"] == target]
        if not rs:
            return None
        count = sum(r["count"] for r in rs)
        a = {
            "rounds": len(rs),
            "count": count,
            "qps": statistics.median(r["qps"] for r in rs),
            "errors": sum(r["errors"] for r in rs),
            "cpu_c": sum(r["cpu_c"] for r in rs),
            "cpu_s": sum(r["cpu_s"] for r in rs),
        }
        for p in ("p50", "p90", "p99"):
            vals = [r[p] for r in rs if r[p] is not None]
            a[p] = statistics.median(vals) if vals else None
        a["cpu1k_c"] = a["cpu_c"] / count * 1000.0 if count else None
        a["cpu1k_s"] = a["cpu_s"] / count * 1000.0 if count else None
        return a

    def rss(key):
        v = facts.get(key)
        return int(v) / 1024.0 if v else None  # kB -> MiB

    out = []
    w = out.append
    w("# weft-proxy benchmark results")
    w("")
    w(f"- date: {facts.get('date')}; commit {facts.get('commit')}")
    w(f"- machine: {facts.get('nproc')} CPUs, {facts.get('cpu')}, kernel {facts.get('kernel')}; "
      f"load average at start {facts.get('loadavg_start')}, at end {facts.get('loadavg_end')}")
    w(f"- versions: {facts.get('go')}, HAProxy {facts.get('haproxy')}, fortio {facts.get('fortio')}, "
      f"ghz {facts.get('ghz')}")
    w(f"- load: {facts.get('qps')} QPS, {facts.get('conns')} connections, {facts.get('payload')}-byte "
      f"body echoed, {facts.get('rounds')} interleaved round(s) of {facts.get('duration')} s per target; "
      f"saturation {facts.get('sat_duration')} s; gRPC {facts.get('grpc_duration')} s")
    w("- latencies are client-side (fortio / ghz), in ms; median over rounds. CPU is user+system time "
      "of each proxy process; RSS is VmHWM (peak) in MiB.")
    w("")

    d = agg("latency", "direct")
    wf = agg("latency", "weft")
    hp = agg("latency", "haproxy")
    w(f"## HTTP/1.1 at {facts.get('qps')} QPS")
    w("")
    w("| target | QPS | p50 | p90 | p99 | added p50 | added p90 | added p99 | errors "
      "| CPU ms/1k req (outbound / inbound) | peak RSS MiB (outbound / inbound) |")
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    rss_map = {
        "weft": (rss("rss_weft_client"), rss("rss_weft_server")),
        "haproxy": (rss("rss_haproxy_client"), rss("rss_haproxy_server")),
    }
    for name, a in (("direct", d), ("weft", wf), ("haproxy", hp)):
        if a is None:
            continue
        add = {p: (a[p] - d[p]) if (d and a[p] is not None and d[p] is not None) else None
               for p in ("p50", "p90", "p99")}
        if name == "direct":
            cpu = rs = "—"
            added = ["—", "—", "—"]
        else:
            cpu = f"{a['cpu1k_c']:.1f} / {a['cpu1k_s']:.1f}"
            r = rss_map[name]
            rs = f"{r[0]:.1f} / {r[1]:.1f}" if r[0] is not None else "n/a"
            added = [signed(add[p]) for p in ("p50", "p90", "p99")]
        w(f"| {name} | {a['qps']:.0f} | {ms(a['p50'])} | {ms(a['p90'])} | {ms(a['p99'])} | "
          f"{' | '.join(added)} | {a['errors']} | {cpu} | {rs} |")
    if d and wf and hp:
        def added(a, p):
            return a[p] - d[p]
        w(f"| weft ÷ direct | | {ratio(wf['p50'], d['p50'])} | {ratio(wf['p90'], d['p90'])} | "
          f"{ratio(wf['p99'], d['p99'])} | | | | | | |")
        w(f"| weft ÷ haproxy | | {ratio(wf['p50'], hp['p50'])} | {ratio(wf['p90'], hp['p90'])} | "
          f"{ratio(wf['p99'], hp['p99'])} | {ratio(added(wf, 'p50'), added(hp, 'p50'))} | "
          f"{ratio(added(wf, 'p90'), added(hp, 'p90'))} | {ratio(added(wf, 'p99'), added(hp, 'p99'))} | | "
          f"{ratio(wf['cpu1k_c'], hp['cpu1k_c'])} / {ratio(wf['cpu1k_s'], hp['cpu1k_s'])} | "
          f"{ratio(rss_map['weft'][0], rss_map['haproxy'][0])} / "
          f"{ratio(rss_map['weft'][1], rss_map['haproxy'][1])} |")
    w("")

    w(f"## Saturation (max QPS, {facts.get('conns')} connections, {facts.get('sat_duration')} s)")
    w("")
    w("| target | QPS | p50 | p99 | errors | proxy CPU s (outbound / inbound) "
      "| req per proxy CPU-second (outbound / inbound / pair) |")
    w("|---|---|---|---|---|---|---|")
    sat = {}
    for name in ("direct", "weft", "haproxy"):
        a = agg("saturation", name)
        if a is None:
            continue
        sat[name] = a
        if name == "direct":
            w(f"| {name} | {a['qps']:.0f} | {ms(a['p50'])} | {ms(a['p99'])} | {a['errors']} | — | — |")
            continue
        cs, ss = a["cpu_c"] / 1000.0, a["cpu_s"] / 1000.0
        a["rpc_c"] = a["count"] / cs if cs else None
        a["rpc_s"] = a["count"] / ss if ss else None
        a["rpc_pair"] = a["count"] / (cs + ss) if cs + ss else None
        w(f"| {name} | {a['qps']:.0f} | {ms(a['p50'])} | {ms(a['p99'])} | {a['errors']} | "
          f"{cs:.2f} / {ss:.2f} | {a['rpc_c']:.0f} / {a['rpc_s']:.0f} / {a['rpc_pair']:.0f} |")
    if "weft" in sat and "haproxy" in sat:
        ws, hs = sat["weft"], sat["haproxy"]
        w(f"| weft ÷ haproxy | {ratio(ws['qps'], hs['qps'])} | | | | | "
          f"{ratio(ws['rpc_c'], hs['rpc_c'])} / {ratio(ws['rpc_s'], hs['rpc_s'])} / "
          f"{ratio(ws['rpc_pair'], hs['rpc_pair'])} |")
    w("")

    gd = agg("grpc", "direct")
    gw = agg("grpc", "weft-grpc")
    if gd or gw:
        w(f"## gRPC unary (ghz → fortio ping, {facts.get('qps')} QPS, {facts.get('conns')} connections)")
        w("")
        w("| target | QPS | p50 | p99 | added p50 | added p99 | errors "
          "| CPU ms/1k req (outbound / inbound) | peak RSS MiB (outbound / inbound) |")
        w("|---|---|---|---|---|---|---|---|---|")
        if gd:
            w(f"| direct | {gd['qps']:.0f} | {ms(gd['p50'])} | {ms(gd['p99'])} | — | — | {gd['errors']} | — | — |")
        if gw:
            a50 = gw["p50"] - gd["p50"] if gd else None
            a99 = gw["p99"] - gd["p99"] if gd else None
            rc, rsv = rss("rss_weftgrpc_client"), rss("rss_weftgrpc_server")
            rss_s = f"{rc:.1f} / {rsv:.1f}" if rc is not None and rsv is not None else "n/a"
            w(f"| weft | {gw['qps']:.0f} | {ms(gw['p50'])} | {ms(gw['p99'])} | {signed(a50)} | {signed(a99)} | "
              f"{gw['errors']} | {gw['cpu1k_c']:.1f} / {gw['cpu1k_s']:.1f} | {rss_s} |")
            if gd:
                w(f"| weft ÷ direct | | {ratio(gw['p50'], gd['p50'])} | {ratio(gw['p99'], gd['p99'])} "
                  f"| | | | | |")
        w("")

    if wf and d:
        w("## Targets (weft, HTTP/1.1 at the fixed rate)")
        w("")
        w("| target | measured | verdict |")
        w("|---|---|---|")
        a99 = wf["p99"] - d["p99"]
        w(f"| added p99 ≤ {TARGET_ADDED_P99_MS} ms | {a99:.3f} ms | "
          f"{'met' if a99 <= TARGET_ADDED_P99_MS else 'NOT met'} |")
        worst_cpu = max(wf["cpu1k_c"], wf["cpu1k_s"])
        w(f"| ≤ {TARGET_CPU_MS_PER_1K:.0f} ms CPU per 1000 requests per proxy | "
          f"{wf['cpu1k_c']:.1f} / {wf['cpu1k_s']:.1f} ms (outbound / inbound) | "
          f"{'met' if worst_cpu <= TARGET_CPU_MS_PER_1K else 'NOT met'} |")
        rr = [v for v in rss_map["weft"] + (rss("rss_weftgrpc_client"), rss("rss_weftgrpc_server"))
              if v is not None]
        if rr:
            w(f"| peak RSS ≤ {TARGET_RSS_MIB:.0f} MiB per proxy | max {max(rr):.1f} MiB | "
              f"{'met' if max(rr) <= TARGET_RSS_MIB else 'NOT met'} |")
        w("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
