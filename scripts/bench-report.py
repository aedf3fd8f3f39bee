#!/usr/bin/env python3
"""Benchmark report: reads criterion's output of the benches (ipsec `crypto`, nicsim
`engine`, miniport `oids`, root `pipeline`), the interleaved summaries they leave
(TARGET_DIR/criterion/ipsec-nic-summary.json, `summary` lines in
TARGET_DIR/criterion/bench-stdout.txt) and the TAP example's output
(TARGET_DIR/criterion/tap_bench.txt, when scripts/bench.sh ran it as root), and prints a Markdown table of results and of the ratios that
../shared/spec/performance.md sets as targets, then writes PNG plots.

Usage: scripts/bench-report.py [TARGET_DIR] [--out docs/bench] [--no-plots]

TARGET_DIR defaults to $CARGO_TARGET_DIR, else ./target; results are read from
TARGET_DIR/criterion/**/new/{benchmark,estimates}.json (medians). Every ratio compares two
benchmarks of the same run (the machine is shared and noisy: absolute figures across runs
mean little).
"""

import argparse
import glob
import json
import os
import re
import subprocess
import sys

ALGS = ["aes-gcm-128", "aes-gcm-256", "aes-cbc-128-hmac-sha256", "null-hmac-sha1", "gmac-128"]
SIZES = [64, 512, 1420, 9000]


def load(target):
    """full id -> (median ns per iteration, elements per iteration, bytes per iteration)."""
    out = {}
    pattern = os.path.join(target, "criterion", "**", "new", "benchmark.json")
    for bj in glob.glob(pattern, recursive=True):
        d = os.path.dirname(bj)
        try:
            with open(bj) as f:
                b = json.load(f)
            with open(os.path.join(d, "estimates.json")) as f:
                e = json.load(f)
        except (OSError, ValueError):
            continue
        parts = [b.get("group_id")]
        if b.get("function_id") is not None:
            parts.append(b["function_id"])
        if b.get("value_str") is not None:
            parts.append(b["value_str"])
        key = "/".join(str(p) for p in parts if p is not None)
        t = b.get("throughput") or {}
        elems = nbytes = None
        if "ElementsAndBytes" in t:
            elems = t["ElementsAndBytes"]["elements"]
            nbytes = t["ElementsAndBytes"]["bytes"]
        elif "Bytes" in t:
            nbytes = t["Bytes"]
        elif "Elements" in t:
            elems = t["Elements"]
        out[key] = (e["median"]["point_estimate"], elems, nbytes)
    return out


def gbps(r):
    """GB/s (1e9 bytes per second) of a result, or None."""
    if r is None or r[2] is None:
        return None
    return r[2] / r[0]


def rate(r):
    """Elements per second of a result, or None."""
    if r is None or r[1] is None:
        return None
    return r[1] / r[0] * 1e9


def fmt(x, unit=""):
    if x is None:
        return "–"
    if unit == "pps":
        return f"{x / 1e6:.2f} M/s"
    if unit == "/s":
        return f"{x:,.0f}/s"
    if unit == "x":
        return f"{x:.2f}×"
    if unit == "%":
        return f"{x * 100:.0f} %"
    return f"{x:.2f}"


def verdict(value, target):
    if value is None:
        return "not measured"
    return "PASS" if value >= target else f"MISS ({value / target * 100:.0f} % of target)"


def verdict_max(value, limit):
    """For "lower is better" targets (value <= limit)."""
    if value is None:
        return "not measured"
    return "PASS" if value <= limit else f"MISS ({value / limit * 100:.0f} % of the limit)"


def extras(target):
    """Interleaved figures: pipeline summary JSON, nicsim summary lines, TAP example lines."""
    x = {"pipeline": {}, "engine": {}, "tap": {}, "tap_tx": {}, "sa_table": None}
    crit = os.path.join(target, "criterion")
    try:
        with open(os.path.join(crit, "ipsec-nic-summary.json")) as f:
            for row in json.load(f).get("sizes", []):
                x["pipeline"][row["size"]] = row
    except (OSError, ValueError, KeyError):
        pass
    try:
        with open(os.path.join(crit, "bench-stdout.txt")) as f:
            for line in f:
                m = re.search(r"summary engine_vs_raw (\d+) B .*raw seal (\d+) ns, engine tx (\d+) ns"
                              r".*raw open (\d+) ns, engine rx (\d+) ns", line)
                if m:
                    size, rs, et, ro, er = (int(g) for g in m.groups())
                    x["engine"][size] = (rs, et, ro, er)
                m = re.search(r"summary sa_table \d+ B .*: 1 SA (\d+) ns, 100000 SAs random (\d+) ns"
                              r".*100000 SAs hot64 (\d+) ns", line)
                if m:
                    x["sa_table"] = tuple(int(g) for g in m.groups())
    except OSError:
        pass
    try:
        with open(os.path.join(crit, "tap_bench.txt")) as f:
            for line in f:
                m = re.search(r"(\d+) B UDP payload .*raw TAP ([\d.]+) Mframes/s \(([\d.]+) Gbit/s\), "
                              r"host ([\d.]+) Mframes/s \(([\d.]+) Gbit/s\): host/raw = (\d+) %", line)
                if m:
                    g = m.groups()
                    kind = "tap_tx" if "one host sending" in line else "tap"
                    x[kind][int(g[0])] = (float(g[1]), float(g[2]), float(g[3]), float(g[4]),
                                          int(g[5]) / 100)
    except OSError:
        pass
    return x


def targets(res, fast, ext):
    """Rows: metric, measured, target, verdict."""
    rows = []
    g = f"aes-gcm-128/{fast}"

    def ratio_time(num, den):
        a, b = res.get(num), res.get(den)
        if a is None or b is None:
            return None
        return a[0] / b[0]  # same work per iteration: time(den) speed relative to num

    for size in (1420, 64):
        vs = f"engine_vs_raw/{g}/{size}"
        tx = ratio_time(f"{vs}/raw_seal", f"{vs}/engine_tx")
        rx = ratio_time(f"{vs}/raw_open", f"{vs}/engine_rx")
        tgt = "≥ 85 %" if size == 1420 else "(info)"
        rows.append((f"NIC engine ESP AES-128-GCM encrypt, {size} B, vs raw seal (same binary)",
                     fmt(tx, "%"), tgt, verdict(tx, 0.85) if size == 1420 else "info"))
        rows.append((f"NIC engine decrypt+verify, {size} B, vs raw open (same binary)",
                     fmt(rx, "%"), tgt, verdict(rx, 0.85) if size == 1420 else "info"))
        e = ext["engine"].get(size)
        if e:
            rs, et, ro, er = e
            rows.append((f"same, interleaved (7 rounds, medians), {size} B: encrypt / decrypt",
                         f"{rs / et * 100:.0f} % / {ro / er * 100:.0f} %", tgt,
                         (f"{verdict(rs / et, 0.85)} / {verdict(ro / er, 0.85)}"
                          if size == 1420 else "info")))
    tx = ratio_time(f"esp_seal/{g}/1420/raw", f"engine_tx/{g}/1420")
    rx = ratio_time(f"esp_open/{g}/1420/raw", f"engine_rx/{g}/1420")
    rows.append(("(cross-binary, ipsec vs nicsim bench: encrypt / decrypt, 1420 B)",
                 f"{fmt(tx, '%')} / {fmt(rx, '%')}", "(info)", "info: noise across binaries"))
    for side in ("tx", "rx"):
        p = rate(res.get(f"engine_{side}/{g}/64"))
        rows.append((f"NIC engine 64 B packets ({side}), one core", fmt(p, "pps"), "≥ 2.5 Mpps",
                     verdict(p / 2.5e6 if p else None, 1.0)))
    base = res.get(f"sa_table/{g}/64/1")
    for prefix, traffic in (("", "over up to 4096 random SAs"), ("hot64-", "on 64 of them")):
        for n in ("1000", "100000", "1000000"):
            r = res.get(f"sa_table/{g}/64/{prefix}{n}")
            v = base[0] / r[0] if base and r else None
            tgt = "≥ 90 %" if n == "100000" else "(info)"
            rows.append((f"SA table: lookup+decrypt with {int(n):,} SAs vs 1 SA (64 B), traffic "
                         f"{traffic}", fmt(v, "%"), tgt,
                         verdict(v, 0.9) if n == "100000" else "info"))
    st = ext["sa_table"]
    if st:
        for i, traffic in ((1, "random traffic"), (2, "traffic on 64 SAs")):
            v = st[0] / st[i]
            rows.append((f"same, interleaved (7 rounds, medians), 100,000 SAs, {traffic} "
                         f"({st[i]} vs {st[0]} ns/frame)", fmt(v, "%"), "≥ 90 %", verdict(v, 0.9)))
    c = rate(res.get(f"oid_add_delete_sa/aes-gcm-128/{fast}"))
    rows.append(("control plane: ADD_SA + DELETE_SA pairs per second (AES-GCM-128)", fmt(c, "/s"),
                 "≥ 100,000/s", verdict(c / 1e5 if c else None, 1.0)))
    for size in (1420, 64):
        one = res.get(f"multi_queue/{g}/{size}/workers/1")
        two = res.get(f"multi_queue/{g}/{size}/workers/2")
        v = one[0] / two[0] if one and two else None
        rows.append((f"multi-queue: 2 NIC workers vs 1 over MemWire, {size} B "
                     f"({fmt(rate(one), 'pps')} -> {fmt(rate(two), 'pps')})",
                     fmt(v, "x"), "≥ 1.7×", verdict(v, 1.7)))
    for size in (1420, 64):
        pg = f"pipeline/aes-gcm-128/{size}"
        v = ratio_time(f"{pg}/engine_only", f"{pg}/two_hosts")
        tgt = "≥ 50 %" if size == 1420 else "(info)"
        rows.append((f"full two-host pipeline over the in-memory wire vs engine-only, {size} B "
                     f"({fmt(rate(res.get(pg + '/two_hosts')), 'pps')} vs "
                     f"{fmt(rate(res.get(pg + '/engine_only')), 'pps')})",
                     fmt(v, "%"), tgt, verdict(v, 0.5) if size == 1420 else "info"))
        p = ext["pipeline"].get(size)
        if p:
            v = p["engine_ns"] / p["pipeline_ns"]
            rows.append((f"same, interleaved (7 rounds, medians), {size} B "
                         f"({p['pipeline_ns']:.0f} vs {p['engine_ns']:.0f} ns/packet)",
                         fmt(v, "%"), tgt, verdict(v, 0.5) if size == 1420 else "info"))
    rows.append(("zero allocations per packet in steady state (tests/alloc.rs, offload and "
                 "software, 64 and 1420 B)", "see `cargo test --test alloc`", "0", "test"))
    for size in (1420, 64):
        tap = ext["tap"].get(size)
        tgt = "≥ 80 %" if size == 1420 else "(info)"
        if tap:
            rows.append((f"host on TAP devices, stepping in one thread, vs raw TAP frame rate, "
                         f"{size} B ({tap[0]:.3f} vs {tap[2]:.3f} Mframes/s raw/host)",
                         fmt(tap[4], "%"), tgt,
                         verdict(tap[4], 0.8) if size == 1420 else "info"))
        else:
            rows.append((f"host on TAP devices vs raw TAP frame rate, {size} B", "–", tgt,
                         "not measured (run examples/tap_bench as root)"))
        tx = ext["tap_tx"].get(size)
        if tx:
            rows.append((f"one host sending on a TAP device, NIC on its own threads, vs raw TAP, "
                         f"{size} B ({tx[0]:.3f} vs {tx[2]:.3f} Mframes/s raw/host)",
                         fmt(tx[4], "%"), tgt,
                         verdict(tx[4], 0.8) if size == 1420 else "info"))
    for size in (1420, 64):
        hg = f"host_cpu/aes-gcm-128/{size}"
        v = ratio_time(f"{hg}/software/stack", f"{hg}/offload/stack")
        v = 1 / v if v else None
        tgt = "≤ 40 %" if size == 1420 else "(info)"
        rows.append((f"offload vs software: host-stack CPU per packet, {size} B",
                     fmt(v, "%"), tgt, verdict_max(v, 0.4) if size == 1420 else "info"))
        p = ext["pipeline"].get(size)
        if p:
            v = p["offload_host_ns"] / p["software_host_ns"]
            rows.append((f"same, interleaved, {size} B ({p['offload_host_ns']:.0f} vs "
                         f"{p['software_host_ns']:.0f} ns/packet in the stacks; miniport+NIC "
                         f"{p['offload_nic_ns']:.0f} vs {p['software_nic_ns']:.0f})",
                         fmt(v, "%"), tgt, verdict_max(v, 0.4) if size == 1420 else "info"))
    return rows


def crypto_table(res, providers):
    lines = ["| algorithm | provider | size | raw seal GB/s | bundle seal | engine tx | "
             "raw open GB/s | bundle open | engine rx |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for alg in ALGS:
        for p in providers:
            for s in SIZES:
                rs = res.get(f"esp_seal/{alg}/{p}/{s}/raw")
                bs = res.get(f"esp_seal/{alg}/{p}/{s}/bundle")
                et = res.get(f"engine_tx/{alg}/{p}/{s}")
                ro = res.get(f"esp_open/{alg}/{p}/{s}/raw")
                bo = res.get(f"esp_open/{alg}/{p}/{s}/bundle")
                er = res.get(f"engine_rx/{alg}/{p}/{s}")
                if not any([rs, bs, et, ro, bo, er]):
                    continue

                def rel(x, ref):
                    if x is None or ref is None:
                        return "–"
                    return f"{gbps(x):.2f} ({ref[0] / x[0] * 100:.0f} %)"

                lines.append(f"| {alg} | {p} | {s} | {fmt(gbps(rs))} | {rel(bs, rs)} | "
                             f"{rel(et, rs)} | {fmt(gbps(ro))} | {rel(bo, ro)} | {rel(er, ro)} |")
    return lines


def misc_table(res):
    lines = ["| benchmark | median per iteration | throughput |", "|---|---:|---:|"]
    for k in sorted(res):
        if k.startswith(("replay_check_update", "framing", "sa_table", "multi_queue",
                         "oid_add_delete_sa", "engine_vs_raw", "pipeline", "host_cpu")):
            t, e, b = res[k]
            thr = []
            if e:
                thr.append(fmt(rate(res[k]), "pps") if e > 1 else fmt(rate(res[k]), "/s"))
            if b:
                thr.append(f"{gbps(res[k]):.2f} GB/s")
            lines.append(f"| `{k}` | {t / 1000:.2f} µs | {', '.join(thr)} |")
    return lines


def ensure_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "matplotlib"],
                       check=True)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plots(res, providers, out):
    plt = ensure_matplotlib()
    os.makedirs(out, exist_ok=True)
    written = []
    # 1. raw seal throughput vs size, per algorithm and provider.
    for op in ("seal", "open"):
        fig, axes = plt.subplots(1, len(providers), figsize=(6 * len(providers), 4.5),
                                 sharey=True, squeeze=False)
        for ax, p in zip(axes[0], providers):
            for alg in ALGS:
                xs, ys = [], []
                for s in SIZES:
                    v = gbps(res.get(f"esp_{op}/{alg}/{p}/{s}/raw"))
                    if v is not None:
                        xs.append(s)
                        ys.append(v)
                if xs:
                    ax.plot(xs, ys, marker="o", label=alg)
            ax.set_xscale("log")
            ax.set_xticks(SIZES, [str(s) for s in SIZES])
            ax.set_title(f"raw {op}, {p}")
            ax.set_xlabel("ESP payload (bytes)")
            ax.grid(True, alpha=0.3)
        axes[0][0].set_ylabel("GB/s (one core)")
        axes[0][-1].legend(fontsize=8)
        fig.tight_layout()
        path = os.path.join(out, f"raw_{op}_by_size.png")
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written.append(path)
    # 2. raw vs bundle vs engine, AES-GCM-128, per provider.
    for alg in ("aes-gcm-128", "aes-cbc-128-hmac-sha256"):
        fig, axes = plt.subplots(1, len(providers), figsize=(6 * len(providers), 4.5),
                                 squeeze=False)
        for ax, p in zip(axes[0], providers):
            series = [
                ("raw seal", lambda s: f"esp_seal/{alg}/{p}/{s}/raw", "-"),
                ("Bundle::protect", lambda s: f"esp_seal/{alg}/{p}/{s}/bundle", "-"),
                ("engine tx", lambda s: f"engine_tx/{alg}/{p}/{s}", "-"),
                ("raw open", lambda s: f"esp_open/{alg}/{p}/{s}/raw", "--"),
                ("Bundle::unprotect", lambda s: f"esp_open/{alg}/{p}/{s}/bundle", "--"),
                ("engine rx", lambda s: f"engine_rx/{alg}/{p}/{s}", "--"),
            ]
            for name, k, ls in series:
                xs, ys = [], []
                for s in SIZES:
                    v = gbps(res.get(k(s)))
                    if v is not None:
                        xs.append(s)
                        ys.append(v)
                if xs:
                    ax.plot(xs, ys, marker="o", linestyle=ls, label=name)
            ax.set_xscale("log")
            ax.set_xticks(SIZES, [str(s) for s in SIZES])
            ax.set_title(f"{alg}, {p}: raw vs bundle vs NIC engine")
            ax.set_xlabel("ESP payload (bytes)")
            ax.set_ylabel("GB/s (one core)")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        path = os.path.join(out, f"engine_vs_raw_{alg}.png")
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written.append(path)
    return written


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target", nargs="?",
                    default=os.environ.get("CARGO_TARGET_DIR") or "target")
    ap.add_argument("--out", default="docs/bench", help="where results.md and PNGs go")
    ap.add_argument("--no-plots", action="store_true")
    a = ap.parse_args()
    res = load(a.target)
    if not res:
        sys.exit(f"no criterion results under {a.target}/criterion")
    providers = [p for p in ("aws-lc", "rustcrypto")
                 if any(k.startswith(f"esp_seal/aes-gcm-128/{p}/") for k in res)]
    fast = providers[0] if providers else "aws-lc"
    md = ["## Targets (ratios within one run; fast provider: " + fast + ")", "",
          "| metric | measured | target | verdict |", "|---|---:|---|---|"]
    ext = extras(a.target)
    md += [f"| {m} | {v} | {t} | {d} |" for m, v, t, d in targets(res, fast, ext)]
    md += ["", "## ESP throughput: raw primitive, `Bundle`, NIC engine", "",
           "GB/s of ESP payload on one core; in parentheses, relative to the raw primitive "
           "of the same provider, algorithm and size in the same run.", ""]
    md += crypto_table(res, providers)
    md += ["", "## Other benchmarks", ""]
    md += misc_table(res)
    text = "\n".join(md) + "\n"
    print(text)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(text)
    if not a.no_plots:
        for p in plots(res, providers, a.out):
            print(f"wrote {p}", file=sys.stderr)


if __name__ == "__main__":
    main()
