"""Benchmark client: Python's smtplib sends one pre-formatted message COUNT times.

Usage: smtplib_client.py HOST:PORT COUNT MESSAGE_FILE one-connection|new-connection [SECONDS [latencies]]
Stops after COUNT messages or SECONDS, whichever comes first. Prints one JSON
line with the same keys as `smtp-bench client`; with `latencies`, also the
median and 99th percentile (nearest rank) of each message's time, its
connection included with new-connection.
"""
import json
import math
import resource
import smtplib
import sys
import time

FROM = "bench@example.org"
TO = "sink@example.net"
HELO = "bench.example.org"


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    count = int(sys.argv[2])
    with open(sys.argv[3], "rb") as f:
        msg = f.read()
    new_connection = sys.argv[4] == "new-connection"
    seconds = float(sys.argv[5]) if len(sys.argv) > 5 else None
    keep = len(sys.argv) > 6 and sys.argv[6] == "latencies"
    times = []
    cpu0, t0 = time.process_time(), time.perf_counter()
    end = t0 + seconds if seconds is not None else None

    def done(sent):
        return sent >= count or (end is not None and time.perf_counter() >= end)

    sent = 0
    if new_connection:
        while not done(sent):
            t = time.perf_counter()
            s = smtplib.SMTP(host, int(port), local_hostname=HELO)
            s.sendmail(FROM, [TO], msg)
            s.quit()
            sent += 1
            if keep:
                times.append(time.perf_counter() - t)
    else:
        s = smtplib.SMTP(host, int(port), local_hostname=HELO)
        while not done(sent):
            t = time.perf_counter()
            s.sendmail(FROM, [TO], msg)
            sent += 1
            if keep:
                times.append(time.perf_counter() - t)
        s.quit()
    secs, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = {"client": "smtplib", "messages": sent, "bytes": sent * len(msg),
              "secs": secs, "cpu_secs": cpu, "rss_kib": rss}
    if times:
        times.sort()

        def rank(q):
            return times[min(max(math.ceil(q * len(times)), 1), len(times)) - 1] * 1e6

        report["p50_us"] = rank(0.5)
        report["p99_us"] = rank(0.99)
    print(json.dumps(report, separators=(",", ":")))


main()
